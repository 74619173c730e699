"""The MODEL patch node and Adaptive KSampler (Advanced), in-process."""
from __future__ import annotations

import re

import pytest
import torch

from conftest import count_diffusion_calls, run_node
from helpers import ADAPTIVE_DEFAULTS, KSAMPLER_DEFAULTS, adaptive, fixture, ksampler


def patch(comfy, model, **overrides):
    (patched,) = run_node(comfy, "AdaptiveDiffusionPatch", model=model, **{**ADAPTIVE_DEFAULTS, **overrides})
    return patched


def test_patch_with_core_ksampler_equals_adaptive_ksampler(comfy, caplog):
    inputs = fixture()
    expected, trace = adaptive(comfy, inputs)
    patched = patch(comfy, inputs["model"])
    with caplog.at_level("INFO", logger="AdaptiveDiffusion"):
        samples = ksampler(comfy, {**inputs, "model": patched})
    assert torch.equal(samples, expected)
    assert trace.summary() in caplog.text  # the same run summary reaches the log
    assert "AdaptiveDiffusion: computed" in trace.summary() and "fewer model calls" in trace.summary()


def test_patch_leaves_the_input_model_untouched(comfy):
    inputs = fixture()
    before = dict(inputs["model"].model_options)
    patch(comfy, inputs["model"])
    assert "model_function_wrapper" not in inputs["model"].model_options
    assert inputs["model"].model_options.keys() == before.keys()
    assert torch.equal(ksampler(comfy, inputs), ksampler(comfy, inputs))


def test_patch_chains_an_existing_model_function_wrapper(comfy):
    inputs = fixture()
    seen = []

    def other_pack_wrapper(apply_model, args):
        seen.append(args["input"].shape[0])
        return apply_model(args["input"], args["timestep"], **args["c"]) * 0.5

    model = inputs["model"].clone()
    model.set_model_unet_function_wrapper(other_pack_wrapper)
    reference = ksampler(comfy, {**inputs, "model": model})
    traces = []
    patched = comfy.apply(model, comfy.Config(threshold=0.0), traces.append)
    assert torch.equal(ksampler(comfy, {**inputs, "model": patched}), reference)  # still applied
    seen.clear()
    patched = comfy.apply(model, comfy.Config(threshold=0.5), traces.append)
    ksampler(comfy, {**inputs, "model": patched})
    assert traces[-1].skipped_steps > 0
    assert len(seen) == traces[-1].model_calls  # called for computed calls only


def test_patching_twice_replaces_instead_of_stacking(comfy):
    inputs = fixture()
    once = patch(comfy, inputs["model"], threshold=0.0)
    twice = patch(comfy, once, threshold=0.5)
    wrapper = twice.model_options["model_function_wrapper"]
    assert wrapper.inner is None  # not our wrapper around our wrapper
    with count_diffusion_calls(inputs["model"]) as counter:
        samples = ksampler(comfy, {**inputs, "model": twice})
    expected, trace = adaptive(comfy, inputs, threshold=0.5)
    assert torch.equal(samples, expected) and counter.calls == trace.model_calls


def advanced(comfy, inputs, adaptive_node=True, **overrides):
    values = dict(add_noise="enable", noise_seed=7, steps=10, cfg=4.0, sampler_name="euler",
                  scheduler="normal", start_at_step=0, end_at_step=10000,
                  return_with_leftover_noise="disable", **inputs)
    values.update(overrides)
    if adaptive_node:
        latent, trace = run_node(comfy, "AdaptiveKSamplerAdvanced", **{**ADAPTIVE_DEFAULTS, **values})
        return latent, trace
    (latent,) = run_node(comfy, "KSamplerAdvanced", **values)
    return latent, None


def two_stages(comfy, inputs, adaptive_node, **adaptive_values):
    first, first_trace = advanced(comfy, inputs, adaptive_node, end_at_step=6,
                                  return_with_leftover_noise="enable", **adaptive_values)
    second, second_trace = advanced(comfy, {**inputs, "latent_image": first}, adaptive_node,
                                    add_noise="disable", start_at_step=6, **adaptive_values)
    return second["samples"], first_trace, second_trace


def test_advanced_two_stage_is_bit_identical_at_threshold_zero(comfy):
    inputs = fixture()
    reference, _, _ = two_stages(comfy, inputs, adaptive_node=False)
    samples, first, second = two_stages(comfy, inputs, adaptive_node=True, threshold=0.0)
    assert torch.equal(samples, reference)
    assert (first.total_steps, second.total_steps) == (6, 4)


def test_advanced_two_stage_skips_within_each_stage(comfy):
    inputs = fixture()
    values = {**ADAPTIVE_DEFAULTS, "threshold": 0.5, "warmup_steps": 3, "keep_last_steps": 0}
    with count_diffusion_calls(inputs["model"]) as counter:
        first, _ = advanced(comfy, inputs, steps=20, end_at_step=12,
                            return_with_leftover_noise="enable", **values)
        second, second_trace = advanced(comfy, {**inputs, "latent_image": first}, steps=20,
                                        add_noise="disable", start_at_step=12, **values)
    _, first_trace = advanced(comfy, inputs, steps=20, end_at_step=12,
                              return_with_leftover_noise="enable", **values)
    assert first_trace.total_steps == 12 and second_trace.total_steps == 8
    assert first_trace.skipped_steps > 0
    assert counter.calls == first_trace.model_calls + second_trace.model_calls
    assert torch.isfinite(second["samples"]).all()


def test_denoise_zero_samples_nothing_and_returns_an_empty_trace(comfy):
    inputs = fixture()
    samples, trace = adaptive(comfy, inputs, denoise=0.0)
    assert trace.total_steps == 0 and "nothing was sampled" in trace.notes
    assert torch.equal(samples, inputs["latent_image"]["samples"])


def test_trace_to_dict_has_the_documented_fields(comfy):
    _, trace = adaptive(comfy, fixture())
    data = trace.to_dict()
    for key in ("total_steps", "computed_steps", "model_calls", "threshold", "max_skip_steps",
                "warmup_steps", "keep_last_steps", "noise_reuse", "steps"):
        assert key in data
    assert data["total_steps"] == KSAMPLER_DEFAULTS["steps"] == len(data["steps"])
    assert {"index", "sigma", "d", "computed", "criterion", "model_calls"} <= set(data["steps"][0])
    assert data["computed_steps"] == sum(step["computed"] for step in data["steps"])
    import json
    json.dumps(data)


def unplaced_refusals(trace) -> int:
    """Planned skips the error estimate refused and no later step took, from the trace's note."""
    for note in trace.notes:
        refused = re.match(r"(\d+) planned skips refused", note)
        if refused:
            moved = re.search(r"(\d+) of them moved", note)
            return int(refused.group(1)) - (int(moved.group(1)) if moved else 0)
    return 0


@pytest.mark.parametrize("steps", [20, 40])
def test_two_expert_stages_plan_one_schedule_at_the_asked_speed(comfy, steps):
    """Wan 2.2 14B's graph on the Wan-architecture test model: a high-noise and a low-noise expert
    (two models, different weights) in two Adaptive KSampler (Advanced) nodes over one schedule
    split in halves (10 + 10 as the template without its LoRA, 20 + 20; euler/simple). At 2x the
    two nodes make half the calls together, each its share of one plan; the low-noise expert's
    first steps are its own (computed)."""
    from fixture_pack import tiny_models
    high = fixture("wan_t2v")
    low = tiny_models.build_tiny_model("wan_t2v", seed=5)
    values = {**ADAPTIVE_DEFAULTS, "threshold": 0.01, "noise_reuse": "quadratic", "speed": "2x"}
    stage = dict(steps=steps, sampler_name="euler", scheduler="simple")
    switch = steps // 2
    with count_diffusion_calls(high["model"]) as high_calls, count_diffusion_calls(low) as low_calls:
        first, first_trace = advanced(comfy, high, end_at_step=switch, return_with_leftover_noise="enable",
                                      **stage, **values)
        _, second_trace = advanced(comfy, {**high, "model": low, "latent_image": first}, add_noise="disable",
                                   start_at_step=switch, **stage, **values)
    cond_calls = high_calls.calls + low_calls.calls  # cond and uncond batched: one call a step
    assert (first_trace.stage, second_trace.stage) == ((0, steps), (switch, steps))
    # half the calls, but for refused skips no later step took (the random weights' velocity jumps
    # at high noise; the trace counts them)
    kept = sum(unplaced_refusals(trace) for trace in (first_trace, second_trace))
    assert abs(cond_calls - kept - steps // 2) <= 1, (cond_calls, first_trace.mask_text(), second_trace.mask_text(),
                                                      "\n".join(first_trace.notes + second_trace.notes))
    assert cond_calls == first_trace.model_calls + second_trace.model_calls
    # a flow model extrapolates its velocity linearly: the new expert computes its first 2 steps
    assert second_trace.switch_warmup == 2 and all(step.computed for step in second_trace.steps[:2])
    alone_first, alone_trace = advanced(comfy, high, end_at_step=switch, return_with_leftover_noise="disable",
                                        **stage, **values)  # not a stage: its σ end at 0
    assert alone_trace.stage is None
