"""Adaptive KSampler inside a real ComfyUI (in-process), on real model classes with tiny configs."""
from __future__ import annotations

import pytest
import torch

import comfy.model_management as model_management
import comfy.patcher_extension as comfy_extension
import comfy.samplers as comfy_samplers
import comfy.utils as comfy_utils
from conftest import count_diffusion_calls, run_node
from helpers import ADAPTIVE_DEFAULTS, KSAMPLER_DEFAULTS, adaptive, fixture, ksampler

SAMPLERS = comfy_samplers.KSampler.SAMPLERS
SCHEDULERS = comfy_samplers.KSampler.SCHEDULERS
SELF_STEPPING = {"dpm_fast", "dpm_adaptive"}


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_threshold_zero_is_bit_identical_to_ksampler_for_every_sampler(comfy, sampler):
    inputs = fixture()
    reference = ksampler(comfy, inputs, sampler_name=sampler)
    for mode in ("hold", "linear", "quadratic"):
        samples, trace = adaptive(comfy, inputs, sampler_name=sampler, threshold=0.0, noise_reuse=mode)
        assert torch.equal(samples, reference), mode
        assert trace.skipped_steps == 0 and trace.cached_calls == 0


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_threshold_zero_is_bit_identical_to_ksampler_for_every_scheduler(comfy, scheduler):
    inputs = fixture()
    reference = ksampler(comfy, inputs, scheduler=scheduler)
    for mode in ("hold", "linear", "quadratic"):
        samples, _ = adaptive(comfy, inputs, scheduler=scheduler, threshold=0.0, noise_reuse=mode)
        assert torch.equal(samples, reference), mode


# Every sampler with every noise_reuse mode, each mode under a different scheduler.
@pytest.mark.parametrize("scheduler,mode", [("normal", "hold"), ("karras", "linear"),
                                            ("sgm_uniform", "quadratic")])
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_skipping_runs_with_every_sampler_and_counts_real_model_calls(comfy, sampler, scheduler, mode):
    inputs = fixture()
    with count_diffusion_calls(inputs["model"]) as counter:
        samples, trace = adaptive(comfy, inputs, sampler_name=sampler, scheduler=scheduler,
                                  threshold=1.0, noise_reuse=mode)
    assert torch.isfinite(samples).all()
    assert trace.total_steps == KSAMPLER_DEFAULTS["steps"]
    assert trace.model_calls == counter.calls
    if sampler in SELF_STEPPING:
        assert trace.skipped_steps == 0 and any("chooses its own steps" in n for n in trace.notes)
    else:
        assert trace.skipped_steps > 0 and trace.cached_calls > 0, trace.mask_text()
        assert all(step.model_calls == 0 for step in trace.steps if not step.computed)


@pytest.mark.parametrize("mode", ["hold", "linear", "quadratic"])
@pytest.mark.parametrize("sampler", ["euler", "heun", "dpmpp_2m", "dpmpp_sde", "uni_pc"])
def test_each_noise_reuse_mode_skips_and_changes_only_skipped_steps(comfy, sampler, mode):
    inputs = fixture()
    with count_diffusion_calls(inputs["model"]) as counter:
        samples, trace = adaptive(comfy, inputs, sampler_name=sampler, noise_reuse=mode)
    assert trace.skipped_steps > 0 and trace.model_calls == counter.calls
    assert trace.to_dict()["noise_reuse"] == mode


def test_modes_give_different_results_on_the_same_skip_path(comfy):
    inputs = fixture()
    results = {mode: adaptive(comfy, inputs, noise_reuse=mode) for mode in ("hold", "linear", "quadratic")}
    masks = {mode: trace.mask_text() for mode, (_, trace) in results.items()}
    assert not torch.equal(results["hold"][0], results["linear"][0])
    assert not torch.equal(results["linear"][0], results["quadratic"][0])
    assert "□" in masks["hold"]


def test_split_cond_and_uncond_calls_give_the_same_result(comfy, monkeypatch):
    inputs = fixture()
    with count_diffusion_calls(inputs["model"]) as batched_calls:
        batched, batched_trace = adaptive(comfy, inputs)
    # No free memory: ComfyUI runs cond and uncond as separate model calls.
    monkeypatch.setattr(model_management, "get_free_memory",
                        lambda dev=None, torch_free_too=False: (0, 0) if torch_free_too else 0)
    with count_diffusion_calls(inputs["model"]) as split_calls:
        split, split_trace = adaptive(comfy, inputs)
    assert split_calls.calls == 2 * batched_calls.calls
    assert split_trace.mask_text() == batched_trace.mask_text()
    assert split_trace.model_calls == split_calls.calls
    # Same decisions; the values differ only by float rounding of batched vs single matmuls.
    torch.testing.assert_close(split, batched, rtol=1e-3, atol=1e-3)


def test_cfg_one_drops_the_negative_and_still_skips(comfy):
    inputs = fixture()
    with count_diffusion_calls(inputs["model"]) as counter:
        samples, trace = adaptive(comfy, inputs, cfg=1.0)
    assert counter.rows == trace.model_calls  # one row per call: the negative is never run
    assert trace.skipped_steps > 0 and torch.isfinite(samples).all()


def test_batch_of_three(comfy):
    inputs = fixture(batch=3)
    samples, trace = adaptive(comfy, inputs)
    assert samples.shape == (3, 4, 8, 8)
    assert trace.skipped_steps > 0
    reference = ksampler(comfy, inputs)
    full, _ = adaptive(comfy, inputs, threshold=0.0)
    assert torch.equal(full, reference)


@pytest.mark.parametrize("kind", ["sdxl", "wan_t2v", "wan_i2v"])
def test_sdxl_and_video_models_skip_with_the_right_shapes(comfy, kind):
    inputs = fixture(kind)
    shapes = []

    def record_shapes(executor, *args, **kwargs):
        out = executor(*args, **kwargs)
        shapes.append(tuple(out.shape))
        return out

    traces = []
    patched = comfy.apply(inputs["model"], comfy.Config(threshold=0.5), traces.append)
    patched.add_wrapper_with_key(comfy_extension.WrappersMP.PREDICT_NOISE, "test", record_shapes)
    (latent,) = run_node(comfy, "KSampler", **{**KSAMPLER_DEFAULTS, **inputs, "model": patched})
    expected = tuple(inputs["latent_image"]["samples"].shape)
    assert latent["samples"].shape == expected
    assert traces[0].skipped_steps > 0
    assert set(shapes) == {expected}  # skipped evaluations included


def test_same_seed_twice_is_identical_and_seeds_differ(comfy):
    inputs = fixture()
    first, first_trace = adaptive(comfy, inputs)
    second, second_trace = adaptive(comfy, inputs)
    other, _ = adaptive(comfy, inputs, seed=8)
    assert torch.equal(first, second) and first_trace.to_dict() == second_trace.to_dict()
    assert not torch.equal(first, other)


def test_two_adaptive_samplers_on_one_model_keep_independent_traces(comfy):
    inputs = fixture()
    fast, fast_trace = adaptive(comfy, inputs, threshold=0.5)
    full, full_trace = adaptive(comfy, inputs, threshold=0.0)
    again, again_trace = adaptive(comfy, inputs, threshold=0.5)
    assert fast_trace.skipped_steps > 0 and full_trace.skipped_steps == 0
    assert again_trace.to_dict() == fast_trace.to_dict() and torch.equal(again, fast)
    assert torch.equal(full, ksampler(comfy, inputs))


def test_interrupted_run_leaves_no_state_and_the_next_run_equals_a_fresh_one(comfy):
    inputs = fixture()
    fresh, fresh_trace = adaptive(comfy, inputs)

    class Interrupted(Exception):
        pass

    def interrupt_at_step_six(value, total, preview=None, node_id=None):
        if value >= 6:
            raise Interrupted()

    comfy_utils.set_progress_bar_global_hook(interrupt_at_step_six)
    try:
        with pytest.raises(Interrupted):
            adaptive(comfy, inputs)
    finally:
        comfy_utils.set_progress_bar_global_hook(None)
    model_options = inputs["model"].model_options
    assert "adaptive_diffusion_run" not in model_options.get("transformer_options", {})
    after, after_trace = adaptive(comfy, inputs)
    assert torch.equal(after, fresh) and after_trace.to_dict() == fresh_trace.to_dict()


@pytest.mark.parametrize("field,value", [("threshold", -0.5), ("max_skip_steps", 0),
                                         ("warmup_steps", 2), ("keep_last_steps", -1),
                                         ("noise_reuse", "cubic"), ("steps", 0)])
def test_bad_inputs_fail_before_sampling_with_the_input_named(comfy, field, value):
    inputs = fixture()
    cls = comfy.mappings["AdaptiveKSampler"]
    message = cls.VALIDATE_INPUTS(**{k: v for k, v in {**ADAPTIVE_DEFAULTS, "steps": 10, field: value}.items()})
    assert isinstance(message, str) and field in message
    with count_diffusion_calls(inputs["model"]) as counter:
        with pytest.raises(ValueError, match=field):
            adaptive(comfy, inputs, **{field: value})
    assert counter.calls == 0


def test_validate_inputs_accepts_good_values_and_linked_inputs(comfy):
    for name in ("AdaptiveKSampler", "AdaptiveKSamplerAdvanced"):
        assert comfy.mappings[name].VALIDATE_INPUTS(steps=10, **ADAPTIVE_DEFAULTS) is True
        assert comfy.mappings[name].VALIDATE_INPUTS() is True  # linked inputs arrive as None
    assert comfy.mappings["AdaptiveDiffusionPatch"].VALIDATE_INPUTS(**ADAPTIVE_DEFAULTS) is True
