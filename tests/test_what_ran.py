"""The trace reports what ran; per-sample calls narrow everything per row or fall back; few-step
graphs; stacked patches (issue 13, correctness 2-4). In-process, real ComfyUI nodes."""
from __future__ import annotations

import pytest
import torch

import comfy.patcher_extension as comfy_extension
from conftest import count_diffusion_calls, run_node
from helpers import adaptive, fixture, ksampler

FAST = dict(threshold=0.5, max_skip_steps=2, noise_reuse="linear")


def assert_trace_matches_calls(trace, counter):
    assert trace.model_calls == counter.calls
    assert all(step.model_calls == 0 for step in trace.steps if not step.computed), \
        [(s.computed, s.model_calls, s.cached_calls) for s in trace.steps]


@pytest.mark.parametrize("start", [0.3, 0.5, 0.7])
def test_a_cond_that_switches_on_mid_run_is_reported_as_computed(comfy, start):
    inputs = fixture()
    (late,) = run_node(comfy, "ConditioningSetTimestepRange", conditioning=fixture()["negative"],
                       start=start, end=1.0)
    (positive,) = run_node(comfy, "ConditioningCombine", conditioning_1=inputs["positive"], conditioning_2=late)
    with count_diffusion_calls(inputs["model"]) as counter:
        samples, trace = adaptive(comfy, {**inputs, "positive": positive}, steps=16, **FAST)
    assert torch.isfinite(samples).all() and trace.skipped_steps > 0
    assert_trace_matches_calls(trace, counter)
    assert trace.rows == [[s.computed for s in trace.steps]]


def test_a_replayed_path_that_skips_warmup_steps_reports_them_computed(comfy):
    inputs = fixture()
    from adaptive_core import SkipPath
    path = SkipPath(skip=tuple([True] * 10))  # "skip every step", warm-up included
    with count_diffusion_calls(inputs["model"]) as counter:
        _, trace = adaptive(comfy, inputs, skip_path=path)
    assert_trace_matches_calls(trace, counter)
    assert trace.mask_bits().startswith("111")  # no cache exists for the first steps


def test_a_replaced_model_wrapper_is_reported_instead_of_skips(comfy, caplog):
    inputs = fixture()
    traces = []
    patched = comfy.apply(inputs["model"], comfy.Config(**FAST), traces.append)
    replaced = patched.clone()

    def other_pack(apply_model, args):  # replaces ours, does not chain it
        return apply_model(args["input"], args["timestep"], **args["c"])

    replaced.set_model_unet_function_wrapper(other_pack)
    with caplog.at_level("INFO", logger="AdaptiveDiffusion"):
        samples = ksampler(comfy, {**inputs, "model": replaced})
    trace = traces[-1]
    assert torch.equal(samples, ksampler(comfy, inputs))
    assert trace.skipped_steps == 0 and trace.inactive
    assert "did not act" in trace.summary() and "model_function_wrapper" in trace.summary()
    assert trace.summary() in caplog.text


# -- per_sample: what travels with a call is narrowed per row, or the batch shares decisions --------
def distinct_rows(kind: str, rows: int = 3) -> dict:
    """A batch of different prompts (one text embedding per row) on different noise rows."""
    inputs = fixture(kind, batch=rows)
    generator = torch.Generator().manual_seed(5)
    start = torch.randn(inputs["latent_image"]["samples"].shape, generator=generator)
    start *= torch.arange(rows).float().reshape([rows] + [1] * (start.dim() - 1))  # row 0: empty
    inputs["latent_image"] = {"samples": start, "batch_index": list(range(rows))}
    (text, extra), = inputs["positive"]
    extra = {key: torch.randn((rows,) + tuple(value.shape[1:]), generator=generator) * 3
             for key, value in extra.items()}
    inputs["positive"] = [[torch.randn((rows,) + tuple(text.shape[1:]), generator=generator) * 3, extra]]
    return inputs


def record_calls(model):
    """APPLY_MODEL wrapper recording (rows, rows of transformer_options['sigmas'], chunks)."""
    seen = []

    def wrapper(executor, *args, **kwargs):
        options = args[5] if len(args) > 5 else kwargs["transformer_options"]
        seen.append((args[0].shape[0], options["sigmas"].shape[0], len(options["cond_or_uncond"])))
        return executor(*args, **kwargs)

    model = model.clone()
    model.add_wrapper_with_key(comfy_extension.WrappersMP.APPLY_MODEL, "test_record", wrapper)
    return model, seen


def test_rows_of_a_call_narrow_c_concat_y_and_sigmas(comfy):
    # An inpainting / image-to-video call: c_concat and y per row of the batched call, and
    # transformer_options["sigmas"] per latent row (3 latent rows, cond and uncond chunks).
    x = torch.randn(6, 4, 8, 8)
    c = {"c_concat": torch.randn(6, 5, 8, 8), "y": torch.randn(6, 16), "c_crossattn": torch.randn(6, 7, 32),
         "transformer_options": {"sigmas": torch.tensor([3.0, 2.0, 1.0]), "sample_sigmas": torch.arange(3.0),
                                 "cond_or_uncond": [0, 1]}}
    received = []
    compute_rows = comfy.hooks.rows_computer(received.append, {"input": x, "timestep": torch.full((6,), 2.0),
                                                               "c": c, "cond_or_uncond": [0, 1]})
    compute_rows([1, 4])
    (args,) = received
    index = torch.tensor([1, 4])
    for key in ("c_concat", "y", "c_crossattn"):
        assert torch.equal(args["c"][key], c[key][index]), key
    assert torch.equal(args["input"], x[index])
    assert torch.equal(args["c"]["transformer_options"]["sigmas"], torch.tensor([2.0]))
    assert torch.equal(args["c"]["transformer_options"]["sample_sigmas"], torch.arange(3.0))
    assert torch.equal(c["transformer_options"]["sigmas"], torch.tensor([3.0, 2.0, 1.0]))  # untouched


@pytest.mark.parametrize("kind", ["sd15", "sdxl"])
def test_per_sample_narrows_conditioning_and_sigmas_per_row(comfy, kind):
    # sdxl: `y` (adm) conditioning, split with the rows in a real run.
    inputs = distinct_rows(kind)
    model, seen = record_calls(inputs["model"])
    # The rows' criteria differ a little: some δ in this range splits their decisions.
    for threshold in (0.002, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.2):
        settings = dict(FAST, threshold=threshold, per_sample=True, steps=16)
        seen.clear()
        samples, trace = adaptive(comfy, {**inputs, "model": model}, **settings)
        if any(rows < 3 * chunks for rows, _, chunks in seen):
            break
    assert any(rows < 3 * chunks for rows, _, chunks in seen), "no call computed only some rows"
    assert trace.per_sample and torch.isfinite(samples).all()
    assert all(rows == sigmas * chunks for rows, sigmas, chunks in seen), seen
    for row in range(3):  # each row takes the path it takes alone
        alone = fixture(kind)
        alone["latent_image"] = {"samples": inputs["latent_image"]["samples"][row:row + 1], "batch_index": [row]}
        (text, extra), = inputs["positive"]
        alone["positive"] = [[text[row:row + 1], {k: v[row:row + 1] for k, v in extra.items()}]]
        _, single = adaptive(comfy, alone, **settings)
        assert single.mask_text() == trace.row_mask_texts()[row], (kind, row, threshold)


def test_per_sample_with_a_patch_holding_a_batch_sized_tensor_falls_back(comfy):
    inputs = distinct_rows("sd15")
    weights = torch.tensor([1.0, 0.9, 1.1, 1.0, 0.9, 1.1])  # one per row of the batched call

    def batch_patch(q, k, v, extra_options):  # like IPAdapter or regional masks: batch-sized
        return q * weights.view(-1, 1, 1).to(q), k, v

    model = inputs["model"].clone()
    model.set_model_attn1_patch(batch_patch)
    samples, trace = adaptive(comfy, {**inputs, "model": model}, per_sample=True, steps=16, **FAST)
    assert torch.isfinite(samples).all() and not trace.per_sample
    assert any("per-sample decisions off" in note for note in trace.notes)
    assert len(set(trace.row_mask_texts())) == 1


def test_per_sample_with_batch_sized_data_in_transformer_options_falls_back(comfy):
    inputs = distinct_rows("sd15")
    model = inputs["model"].clone()
    model.model_options.setdefault("transformer_options", {})["regional_masks"] = {"mask": torch.ones(3, 8, 8)}
    _, trace = adaptive(comfy, {**inputs, "model": model}, per_sample=True, steps=16, **FAST)
    assert not trace.per_sample and any("per-sample decisions off" in note for note in trace.notes)


# -- few-step graphs and stacked patches -----------------------------------------------------------
@pytest.mark.parametrize("steps", [1, 2, 4])
def test_few_step_graphs_run_unskipped_with_a_note(comfy, steps):
    inputs = fixture()
    settings = dict(steps=steps, cfg=1.0, sampler_name="lcm", scheduler="sgm_uniform")
    cls = comfy.mappings["AdaptiveKSampler"]
    assert cls.VALIDATE_INPUTS(steps=steps, threshold=0.5, warmup_steps=4) is True
    samples, trace = adaptive(comfy, inputs, **settings, threshold=0.5)
    assert torch.equal(samples, ksampler(comfy, inputs, **settings))
    assert trace.skipped_steps == 0 and any("ran unskipped" in note for note in trace.notes)


def test_the_advanced_node_checks_its_own_stage(comfy):
    inputs = fixture()
    values = dict(add_noise="enable", noise_seed=7, steps=20, cfg=4.0, sampler_name="euler",
                  scheduler="normal", start_at_step=18, end_at_step=10000,
                  return_with_leftover_noise="disable", **inputs)
    (reference,) = run_node(comfy, "KSamplerAdvanced", **values)
    latent, trace = run_node(comfy, "AdaptiveKSamplerAdvanced", **values, threshold=0.5, max_skip_steps=4,
                             warmup_steps=4, keep_last_steps=1, noise_reuse="linear", per_sample=False)
    assert torch.equal(latent["samples"], reference["samples"])
    assert trace.total_steps == 2 and any("ran unskipped" in note for note in trace.notes)


def test_a_second_patch_over_a_chaining_wrapper_over_a_first_answers_each_call_once(comfy, monkeypatch):
    inputs = fixture()

    class ChainingWrapper:  # another pack's wrapper that chains the one it found
        def __init__(self, inner):
            self.inner = inner

        def __deepcopy__(self, memo):
            return self

        def __call__(self, apply_model, args):
            return self.inner(apply_model, args)

    first = comfy.apply(inputs["model"], comfy.Config(threshold=0.0))
    middle = first.clone()
    middle.set_model_unet_function_wrapper(ChainingWrapper(middle.model_options["model_function_wrapper"]))
    traces = []
    second = comfy.apply(middle, comfy.Config(**FAST), traces.append)
    answered = []
    original = comfy.hooks.AdaptiveRun.model_call

    def counting(self, *args, **kwargs):
        answered.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(comfy.hooks.AdaptiveRun, "model_call", counting)
    with count_diffusion_calls(inputs["model"]) as counter:
        samples = ksampler(comfy, {**inputs, "model": second}, steps=16)
    trace = traces[-1]
    assert trace.skipped_steps > 0 and trace.model_calls == counter.calls
    assert len(answered) == trace.model_calls + trace.cached_calls
    expected, _ = adaptive(comfy, inputs, steps=16, **FAST)
    assert torch.equal(samples, expected)
