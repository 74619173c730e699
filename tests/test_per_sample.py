"""per_sample: one decision per batch row, and the model runs only on the rows that need it."""
from __future__ import annotations

import torch

from conftest import count_diffusion_calls, run_node
from helpers import adaptive, fixture


def copies_of_one_prompt(inputs: dict, rows: int) -> dict:
    """The same prompt `rows` times: batch_index makes every row get row 0's noise."""
    shape = inputs["latent_image"]["samples"].shape
    latent = {"samples": torch.zeros((rows, *shape[1:])), "batch_index": [0] * rows}
    return {**inputs, "latent_image": latent}


def test_identical_rows_each_equal_the_single_prompt_run(comfy):
    inputs = fixture()
    single, single_trace = adaptive(comfy, inputs, per_sample=True)
    batch, trace = adaptive(comfy, copies_of_one_prompt(inputs, 3), per_sample=True)
    assert trace.row_mask_texts() == [single_trace.mask_text()] * 3
    for row in range(3):
        # equal up to float rounding of batched matmuls (the random fixture model amplifies it)
        torch.testing.assert_close(batch[row:row + 1], single, rtol=1e-3, atol=1e-3)


def digits_batch(comfy, digits: list[int]) -> dict:
    """The trained reference model with one prompt (class, noise row) per batch row."""
    (model,) = run_node(comfy, "AdaptiveDemoDigitsModel")
    (negative,) = run_node(comfy, "AdaptiveDemoDigitClass", digit="none")
    tokens = torch.nn.functional.one_hot(torch.tensor(digits), 11).float().unsqueeze(1)
    latent = {"samples": torch.zeros(len(digits), 1, 16, 16), "batch_index": list(range(len(digits)))}
    return dict(model=model, positive=[[tokens, {}]], negative=negative, latent_image=latent)


def test_different_prompts_get_their_own_paths_and_only_needed_rows_run(comfy):
    inputs = digits_batch(comfy, [0, 3, 7, 8])
    settings = dict(per_sample=True, threshold=0.01, steps=30, cfg=3.0)
    with count_diffusion_calls(inputs["model"]) as counter:
        _, trace = adaptive(comfy, inputs, **settings)
    masks = trace.row_mask_texts()
    assert len(masks) == 4 and len(set(masks)) > 1, masks
    computed_row_steps = sum(sum(row) for row in trace.rows)
    assert counter.rows == trace.model_rows == 2 * computed_row_steps  # cond + uncond per row-step
    for row, digit in enumerate([0, 3, 7, 8]):  # each row's path is the one it gets alone
        alone = digits_batch(comfy, [digit])
        alone["latent_image"]["batch_index"] = [row]
        _, single = adaptive(comfy, alone, **settings)
        assert single.mask_text() == masks[row]
    _, batch_trace = adaptive(comfy, inputs, **{**settings, "per_sample": False})
    assert len(set(batch_trace.row_mask_texts())) == 1  # the paper: one path for the batch


def test_per_sample_with_split_calls_and_video_latents(comfy, monkeypatch):
    import comfy.model_management as model_management
    inputs = fixture("wan_t2v", batch=3)
    _, batched = adaptive(comfy, inputs, per_sample=True, threshold=0.5)
    monkeypatch.setattr(model_management, "get_free_memory",
                        lambda dev=None, torch_free_too=False: (0, 0) if torch_free_too else 0)
    with count_diffusion_calls(inputs["model"]) as counter:
        samples, split = adaptive(comfy, inputs, per_sample=True, threshold=0.5)
    assert samples.shape == (3, 16, 3, 8, 8)
    assert split.row_mask_texts() == batched.row_mask_texts()
    assert counter.rows == split.model_rows


def test_unsplittable_conditioning_falls_back_to_batch_decisions(comfy, caplog):
    from adaptive_core import AdaptiveConfig, AdaptiveRun
    run = AdaptiveRun(AdaptiveConfig(threshold=0.5, per_sample=True), [3.0, 2.0, 1.0, 0.0])
    wrapper = comfy.hooks.AdaptiveModelFunction(None)
    x = torch.randn(4, 4, 8, 8)
    c = {"c_crossattn": torch.randn(4, 7, 32), "control": {"output": [torch.randn(2, 4, 8, 8)]},
         "transformer_options": {comfy.hooks.RUN_KEY: run, "uuids": ["a", "b"]}}
    run.begin_evaluation(x[:2])
    with caplog.at_level("INFO", logger="AdaptiveDiffusion"):
        out = wrapper(lambda input, timestep, **kw: input * 0.5,
                      {"input": x, "timestep": torch.full((4,), 3.0), "c": c, "cond_or_uncond": [0, 1]})
    assert out.shape == x.shape and not run.per_sample
    assert "split by rows" in caplog.text and any("per-sample decisions off" in n for n in run.trace.notes)


def test_the_mask_picture_draws_one_row_per_batch_item(comfy):
    inputs = digits_batch(comfy, [0, 3, 7])
    _, trace = adaptive(comfy, inputs, per_sample=True, threshold=0.01, steps=30, cfg=3.0)
    items = trace.per_item()
    assert [item.mask_text() for item in items] == trace.row_mask_texts()
    (image,) = run_node(comfy, "AdaptiveSkipMaskPreview", trace=trace)
    (single,) = run_node(comfy, "AdaptiveSkipMaskPreview", trace=items[0])
    assert image.shape[1] > 2 * single.shape[1]  # three stacked rows
