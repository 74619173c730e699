"""Samplers that add noise every step (ancestral, SDE) in the real ComfyUI: a skipped call is
answered by extrapolating x̂0, and the sampler adds its own noise as always (issue 26)."""
from __future__ import annotations

import pytest
import torch

from helpers import adaptive, fixture, ksampler

FRESH = ["euler_ancestral", "euler_ancestral_cfg_pp", "er_sde", "sa_solver", "res_multistep_ancestral"]
BROWNIAN = ["dpmpp_2m_sde", "dpmpp_3m_sde"]
SPEED = dict(threshold=0.01, speed="2x", noise_reuse="quadratic", warmup_steps=4, keep_last_steps=1)


def linear_denoiser(model, seed: int = 0):
    """The model below every wrapper answers x̂0 = a + b σ whatever x is: linear in σ, so the
    extrapolation of x̂0 is exact, and only the sampler's own noise moves the latent otherwise."""
    generator = torch.Generator().manual_seed(seed)
    state: dict = {}

    def denoise(apply_model, args):
        x, sigma = args["input"], args["timestep"].float()
        if "a" not in state or state["a"].shape != x.shape[1:]:
            state["a"] = torch.randn(x.shape[1:], generator=generator)
            state["b"] = 0.1 * torch.randn(x.shape[1:], generator=generator)
        rows = sigma.reshape(-1, *([1] * (x.dim() - 1)))
        return (state["a"] + state["b"] * rows).expand_as(x).to(x.dtype)
    patched = model.clone()
    patched.set_model_unet_function_wrapper(denoise)
    return patched


@pytest.mark.parametrize("sampler", FRESH)
def test_a_skip_predicts_the_denoised_image_and_keeps_the_samplers_noise(comfy, sampler):
    inputs = fixture()
    inputs["model"] = linear_denoiser(inputs["model"])
    settings = dict(steps=20, sampler_name=sampler, scheduler="karras")
    reference = ksampler(comfy, inputs, **settings)
    samples, trace = adaptive(comfy, inputs, **settings, **SPEED)
    # half the calls skipped, and the picture is KSampler's: the same noise was added at every step
    # (the stream depends on the seed and σ, not on the model calls) and x̂0 was extrapolated exactly
    assert trace.skipped_steps >= 8, (trace.mask_text(), trace.notes)
    torch.testing.assert_close(samples, reference, rtol=1e-4, atol=1e-4)
    assert any("a skip extrapolates x̂0" in note for note in trace.notes), trace.notes


@pytest.mark.parametrize("sampler", ["euler_ancestral", "er_sde"])
def test_a_flow_model_with_a_stochastic_sampler_skips_too(comfy, sampler):
    inputs = fixture("wan_t2v")
    inputs["model"] = linear_denoiser(inputs["model"], seed=1)
    settings = dict(steps=20, sampler_name=sampler, scheduler="simple")
    reference = ksampler(comfy, inputs, **settings)
    samples, trace = adaptive(comfy, inputs, **settings, **SPEED)
    assert trace.skipped_steps >= 8, (trace.mask_text(), trace.notes)
    torch.testing.assert_close(samples, reference, rtol=1e-4, atol=1e-4)


def test_an_ode_sampler_keeps_the_noise_prediction_and_its_correction(comfy):
    _, trace = adaptive(comfy, fixture(), steps=20, sampler_name="euler", scheduler="karras", **SPEED)
    assert not any("a skip extrapolates x̂0" in note for note in trace.notes)
    assert any("corrected by the computed step after them" in note for note in trace.notes), trace.notes


@pytest.mark.parametrize("sampler", BROWNIAN)
def test_brownian_path_samplers_run_unskipped_and_say_why(comfy, sampler):
    inputs = fixture()
    settings = dict(steps=12, sampler_name=sampler, scheduler="karras")
    samples, trace = adaptive(comfy, inputs, **settings, **SPEED)
    assert trace.skipped_steps == 0 and trace.cached_calls == 0
    assert any("Brownian path" in note and "ran unskipped" in note for note in trace.notes), trace.notes
    assert torch.equal(samples, ksampler(comfy, inputs, **settings))


@pytest.mark.parametrize("speed, calls", [("1.5x", 13), ("2x", 10), ("3x", 8)])
def test_each_speed_gives_its_calls_on_a_fresh_noise_sampler(comfy, speed, calls):
    inputs = fixture()
    inputs["model"] = linear_denoiser(inputs["model"])
    _, trace = adaptive(comfy, inputs, steps=20, sampler_name="euler_ancestral", scheduler="karras",
                        **{**SPEED, "speed": speed})
    assert abs(trace.model_calls - calls) <= 1, (speed, trace.model_calls, trace.mask_text(), trace.notes)


@pytest.mark.parametrize("sampler, scheduler", [("euler_ancestral", "normal"), ("er_sde", "karras"),
                                                ("sa_solver", "karras")])
def test_on_the_trained_model_a_fresh_noise_sampler_beats_plain_fewer_steps(comfy, sampler, scheduler):
    """The quality floor (bench/stochastic.py has the figures): at the pack's calls, plain KSampler
    with fewer steps draws other noise and lands far from the full-step picture; the pack does not."""
    from test_per_sample import digits_batch
    from test_speed_control import psnr_to
    inputs = digits_batch(comfy, [3, 7])
    settings = dict(cfg=3.0, sampler_name=sampler, scheduler=scheduler)
    full = ksampler(comfy, inputs, steps=25, **settings)
    samples, trace = adaptive(comfy, inputs, steps=25, **settings, **SPEED)
    calls = trace.model_calls
    assert calls <= 25 / 1.5, (trace.mask_text(), trace.notes)  # refusals may cost a few calls
    fewer = ksampler(comfy, inputs, steps=round(calls), **settings)
    assert psnr_to(samples, full) >= psnr_to(fewer, full) + 6.0, (psnr_to(samples, full), psnr_to(fewer, full))
