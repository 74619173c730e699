"""The `speed` input in a real ComfyUI (in-process): it skips about the asked share of the steps on
the SD-, SDXL- and Wan-architecture tiny models (random weights, where no δ transfers), inputs
missing from a prompt keep their old meaning, and bad values are refused before sampling."""
from __future__ import annotations

import re

import pytest
import torch

import comfy.samplers as comfy_samplers
from conftest import count_diffusion_calls, run_node
from helpers import adaptive, fixture, ksampler

STEPS = 20


@pytest.mark.parametrize("kind", ["sd15", "sdxl", "wan_t2v"])
def test_the_default_speed_skips_about_half_the_steps_on_every_architecture(comfy, kind):
    inputs = fixture(kind)
    with count_diffusion_calls(inputs["model"]) as counter:
        samples, trace = adaptive(comfy, inputs, steps=STEPS, threshold=0.01, speed="2x")
    assert STEPS / 2 - 1.5 <= trace.computed_steps <= STEPS / 2 + 0.5, trace.mask_bits()
    assert counter.calls == trace.model_calls  # cond and uncond batched: one call per computed step
    # 10 skips in the 15 steps between warm-up and the last: runs of 2 fit them in one pattern; a
    # flow model (Wan) may run 3 to choose where (decision.cheapest_skips, longer_runs_when_tight)
    longest = 3 if kind == "wan_t2v" else 2
    assert "0" * (longest + 1) not in trace.mask_bits(), trace.mask_bits()
    assert trace.mask_bits()[:4] == "1111" and trace.mask_bits()[-1] == "1"
    assert torch.isfinite(samples).all()
    full = ksampler(comfy, inputs, steps=STEPS)
    assert (samples - full).abs().max() < full.abs().max()  # an approximation of the same result


@pytest.mark.parametrize("speed, most_calls", [("1.5x", 14), ("1.75x", 11), ("2.5x", 10), ("3x", 9)])
def test_each_speed_gives_its_share_of_model_calls(comfy, speed, most_calls):
    _, trace = adaptive(comfy, fixture("sdxl"), steps=STEPS, threshold=0.01, speed=speed)
    assert most_calls - 2 <= trace.computed_steps <= most_calls


def test_the_normal_schedules_long_step_into_the_last_is_computed_when_the_budget_is_tight(comfy):
    # 30 steps at 1.75x: 13 skips among steps 4-28 could only be every other step, step 28 among
    # them: the normal schedule's long step to its smallest σ, whose skip nothing corrects.
    _, trace = adaptive(comfy, fixture("sd15"), steps=30, threshold=0.01, speed="1.75x", scheduler="normal")
    bits = trace.mask_bits()
    assert bits[:4] == "1111" and bits[28:] == "11" and bits.count("0") == 13, bits


def test_a_prompt_without_speed_decides_with_the_threshold_as_before(comfy):
    inputs = fixture("sd15")
    without, old_trace = adaptive(comfy, inputs, steps=STEPS, threshold=0.3)
    with_threshold, trace = adaptive(comfy, inputs, steps=STEPS, threshold=0.3, speed="threshold (δ)")
    assert torch.equal(without, with_threshold) and old_trace.mask_bits() == trace.mask_bits()
    assert old_trace.config.speed == "threshold (δ)"


def test_threshold_zero_is_ksampler_at_every_speed(comfy):
    inputs = fixture("sd15")
    full = ksampler(comfy, inputs, steps=STEPS)
    for speed in ("1.5x", "2x", "3x"):
        samples, trace = adaptive(comfy, inputs, steps=STEPS, threshold=0.0, speed=speed)
        assert torch.equal(samples, full) and trace.skipped_steps == 0


@pytest.mark.parametrize("node", ["AdaptiveKSampler", "AdaptiveKSamplerAdvanced", "AdaptiveDiffusionPatch"])
def test_a_bad_speed_is_refused_by_name_before_sampling(comfy, node):
    cls = comfy.mappings[node]
    assert cls.VALIDATE_INPUTS(speed="4x").startswith("speed must be one of")
    assert cls.VALIDATE_INPUTS(speed="2x") is True and cls.VALIDATE_INPUTS() is True
    optional = cls.INPUT_TYPES()["optional"]
    assert list(optional) == ["skip_path", "speed"] and optional["speed"][1]["tooltip"]


def test_a_bad_speed_never_reaches_the_sampler(comfy):
    inputs = fixture("sd15")
    with count_diffusion_calls(inputs["model"]) as counter, pytest.raises(ValueError, match="speed"):
        run_node(comfy, "AdaptiveKSampler", **{**inputs, "seed": 1, "steps": 8, "cfg": 4.0, "sampler_name": "euler",
                                               "scheduler": "normal", "threshold": 0.01, "max_skip_steps": 4,
                                               "warmup_steps": 4, "keep_last_steps": 1, "noise_reuse": "linear",
                                               "per_sample": False, "speed": "fast"})
    assert counter.calls == 0


@pytest.mark.parametrize("sampler, per_sample", [("heun", False), ("heun", True), ("dpm_2", False)])
def test_two_call_samplers_skip_only_the_first_call_where_the_budget_allows(comfy, sampler, per_sample):
    from test_per_sample import digits_batch  # the trained reference model: a smooth noise to predict
    inputs = digits_batch(comfy, [3, 7])
    with count_diffusion_calls(inputs["model"]) as counter:
        samples, trace = adaptive(comfy, inputs, steps=STEPS, threshold=0.01, speed="1.5x", sampler_name=sampler,
                                  per_sample=per_sample)
    assert counter.calls == trace.model_calls and torch.isfinite(samples).all()
    full_calls = 2 * STEPS - 1  # two calls a step, one in the last
    assert trace.model_calls <= full_calls / 1.5 + 1
    assert trace.skipped_steps == 0  # 1.5x fits in first-call skips alone
    assert any("steps skipped only their first model call" in note for note in trace.notes)


def psnr_to(samples: torch.Tensor, reference: torch.Tensor) -> float:
    return float(-10 * torch.log10(((samples - reference) ** 2).mean()))


@pytest.mark.parametrize("sampler, scheduler", [("ddim", "normal"), ("dpmpp_2m", "karras"), ("res_multistep", "karras"),
                                                ("uni_pc", "normal"), ("ipndm", "karras"), ("deis", "karras")])
def test_the_step_after_a_skip_corrects_it_and_comes_closer_to_ksampler(comfy, monkeypatch, sampler, scheduler):
    """x̂0-linear steps (DDIM, DPM++ 2M, res_multistep, UniPC) and noise-linear ones (iPNDM, DEIS).
    25 steps: at 20, 2x leaves these two prompts far from KSampler's picture (about 14 dB here)
    on most of these samplers with or without the correction."""
    from test_mask_picture import core_module
    from test_per_sample import digits_batch  # the trained reference model
    inputs = digits_batch(comfy, [3, 7])
    settings = dict(steps=25, cfg=3.0, sampler_name=sampler, scheduler=scheduler)
    full = ksampler(comfy, inputs, **settings)
    samples, trace = adaptive(comfy, inputs, threshold=0.01, speed="2x", **settings)
    assert any("corrected by the computed step after them" in note for note in trace.notes), trace.notes
    monkeypatch.setattr(core_module(comfy, "correction").SkipCorrection, "after_evaluation",
                        lambda self, step, x, denoised, *rest: denoised)
    uncorrected, same = adaptive(comfy, inputs, threshold=0.01, speed="2x", **settings)
    assert same.mask_text() == trace.mask_text() and same.model_calls == trace.model_calls
    assert psnr_to(samples, full) > psnr_to(uncorrected, full) + 1.0


@pytest.mark.parametrize("sampler, scheduler", [("ipndm", "normal"), ("deis", "karras"), ("lms", "karras"),
                                                ("gradient_estimation", "normal")])
def test_steps_linear_in_the_recent_noises_have_every_correctable_skip_corrected(comfy, sampler, scheduler):
    """iPNDM, DEIS, LMS, gradient estimation: the step is x + Σ w_j ε_j over past latents too, which
    no x̂0-linear formula reproduces; fitted on the noises, every skip followed by a computed step
    other than the last is corrected, the first after the warm-up included (its fit reaches back into
    the warm-up, whose steps the pack records once each callback names them)."""
    from adaptive_core.trace import COMPUTED_MARK, SKIPPED_MARK
    from test_per_sample import digits_batch
    inputs = digits_batch(comfy, [3, 7])
    _, trace = adaptive(comfy, inputs, threshold=0.01, speed="2x", steps=25, cfg=3.0, sampler_name=sampler,
                        scheduler=scheduler)
    mask = trace.mask_text()
    correctable = sum(mask[k] == SKIPPED_MARK and mask[k + 1] == COMPUTED_MARK for k in range(len(mask) - 2))
    corrected = [note for note in trace.notes if "corrected by the computed step after them" in note]
    assert correctable > 0 and corrected and corrected[0].startswith(f"{correctable} skipped steps were"), \
        (mask, trace.notes)


@pytest.mark.parametrize("sampler", ["euler_cfg_pp", "res_multistep_cfg_pp"])
def test_samplers_whose_steps_fit_no_linear_step_are_not_corrected(comfy, sampler):
    from test_per_sample import digits_batch
    inputs = digits_batch(comfy, [3, 7])
    _, trace = adaptive(comfy, inputs, threshold=0.01, speed="2x", steps=STEPS, cfg=3.0, sampler_name=sampler)
    assert trace.skipped_steps > 0
    assert not any("corrected" in note for note in trace.notes), trace.notes


@pytest.mark.parametrize("sampler", ["lms", "ipndm_v", "dpmpp_2m"])
def test_samplers_stepping_with_past_values_compute_the_steps_a_long_step_reuses(comfy, monkeypatch, sampler):
    """The normal schedule's last step to σ > 0 (0.139 -> 0.029 at 50 steps) is ~4x longer in log σ
    than the one before it: LMS, iPNDM and DPM++ 2M carry their last values into it, so the plan's
    skips among the three steps before it are computed, and the result comes closer to KSampler's
    than with them skipped; Euler, which steps with the newest value only, keeps them."""
    from test_mask_picture import core_module
    from test_per_sample import digits_batch
    reused_by_long_step = core_module(comfy, "decision").reused_by_long_step
    inputs = digits_batch(comfy, [3, 7])
    settings = dict(steps=50, cfg=3.0, scheduler="normal")
    _, euler = adaptive(comfy, inputs, threshold=0.01, speed="2x", sampler_name="euler", **settings)
    samples, trace = adaptive(comfy, inputs, threshold=0.01, speed="2x", sampler_name=sampler, **settings)
    sigmas = [step.sigma for step in trace.steps] + [0.0]
    reused = [k for k in range(50) if reused_by_long_step(sigmas, k)]
    assert reused == [45, 46, 47]
    assert any(not euler.rows[0][k] for k in reused), euler.mask_text()  # planned skips there
    assert all(trace.rows[0][k] for k in reused), trace.mask_text()
    assert any("a much longer step follows them" in note for note in trace.notes), trace.notes
    assert trace.computed_steps <= euler.computed_steps + 1
    monkeypatch.setattr(core_module(comfy, "decision_state"), "reused_by_long_step", lambda sigmas, k: False)
    skipped, same_plan = adaptive(comfy, inputs, threshold=0.01, speed="2x", sampler_name=sampler, **settings)
    assert same_plan.mask_text() == euler.mask_text()
    full = ksampler(comfy, inputs, sampler_name=sampler, **settings)
    assert psnr_to(samples, full) > psnr_to(skipped, full) + 1.0


@pytest.mark.parametrize("scheduler", comfy_samplers.KSampler.SCHEDULERS)
@pytest.mark.parametrize("kind", ["sd15", "wan_t2v"])
def test_2x_plans_half_the_calls_on_every_scheduler_or_says_how_many_fit(comfy, kind, scheduler):
    """KSampler's every scheduler, an ε and a flow-matching model, 20 steps: the plan alone (no skip
    refused) makes 10 calls, or the trace says how many skips the schedule holds and makes those."""
    inputs = fixture(kind)
    traces: list = []
    patched = comfy.apply(inputs["model"], comfy.Config(threshold=0.01, speed="2x", error_tolerance=100.0),
                          on_trace=traces.append)
    with count_diffusion_calls(inputs["model"]) as network:
        ksampler(comfy, {**inputs, "model": patched}, steps=STEPS, scheduler=scheduler)
    (trace,) = traces
    assert network.calls == trace.model_calls
    short = [re.match(r"room for only (\d+) of the 10 skips", note) for note in trace.notes]
    skips = next((int(m.group(1)) for m in short if m), 10)
    assert trace.model_calls == STEPS - skips, (scheduler, trace.mask_text(), trace.notes)
