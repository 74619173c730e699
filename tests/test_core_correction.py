"""The correction of a skipped step by the computed step after it (adaptive_core/correction.py)."""
from __future__ import annotations

import pytest
import torch

from adaptive_core import AdaptiveConfig, AdaptiveRun
from adaptive_core.correction import SkipCorrection, euler_step_error, shifted_denoised
from adaptive_core.noise_cache import NoisePoint, extrapolate

SIGMAS = torch.linspace(10.0, 0.5, 21).tolist() + [0.0]


def test_the_interpolation_between_points_reproduces_a_quadratic_exactly():
    f = lambda s: 2.0 - 0.5 * s + 0.25 * s * s  # noqa: E731
    points = [NoisePoint(torch.tensor(s), torch.tensor([f(s)]), tag) for tag, s in enumerate([4.0, 2.5, 1.0])]
    assert float(extrapolate(points, 3.1, "quadratic")) == pytest.approx(f(3.1))


def test_the_shifted_denoised_makes_an_euler_step_land_as_if_from_the_corrected_latent():
    torch.manual_seed(0)
    x, denoised, error = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8), 0.1 * torch.randn(3, 4, 8, 8)
    sigma, sigma_next = 2.0, 1.5

    def euler_step(x, denoised):
        return x + (x - denoised) / sigma * (sigma_next - sigma)
    assert torch.allclose(euler_step(x, shifted_denoised(denoised, error, sigma, sigma_next)),
                          euler_step(x - error, denoised), atol=1e-5)


def test_only_an_euler_step_passes_the_check():
    torch.manual_seed(1)
    x, eps_used, eps_better = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    after = x + (1.5 - 2.0) * eps_used
    after[1] += 0.01 * torch.randn(4, 8, 8)  # row 1 took another step (a multistep sampler's)
    error, is_euler = euler_step_error(x, after, eps_used, eps_better, 2.0, 1.5)
    assert is_euler.tolist() == [True, False]
    assert torch.allclose(error, -0.5 * (eps_used - eps_better))


def cubic_noise(sigma: float, x: torch.Tensor) -> torch.Tensor:
    """Noise that a quadratic extrapolation misses (and ignores x): the skips make an error."""
    base = torch.linspace(-1, 1, x[0].numel()).reshape(x.shape[1:])
    return (0.3 + 0.05 * sigma + 0.01 * sigma ** 2 - 0.002 * sigma ** 3) * base.expand_as(x)


def euler_with_events(run: AdaptiveRun | None, x_shift: float = 0.0) -> torch.Tensor:
    """Euler through AdaptiveRun's events, as the host drives it (None: plain Euler);
    x_shift > 0 adds to every step, so that it is no Euler step."""
    x = torch.ones(2, 1, 4, 4) * SIGMAS[0]
    for i in range(len(SIGMAS) - 1):
        sigma = SIGMAS[i]
        if run is None:
            denoised = x - sigma * cubic_noise(sigma, x)
        else:
            run.begin_evaluation(x)
            denoised = run.model_call(lambda x=x: x - sigma * cubic_noise(sigma, x), x,
                                      torch.full((x.shape[0],), sigma), [("cond", None)])
            denoised = run.end_evaluation(x, denoised)
            run.on_step(i)
        x = x + (x - denoised) / sigma * (SIGMAS[i + 1] - sigma) + x_shift
    return x


def sampled(x_shift: float = 0.0, per_sample: bool = False) -> tuple[torch.Tensor, AdaptiveRun]:
    run = AdaptiveRun(AdaptiveConfig(threshold=0.01, speed="2x", per_sample=per_sample), SIGMAS)
    x = euler_with_events(run, x_shift)
    run.finish()
    return x, run


def test_a_skipped_euler_step_is_corrected_by_the_next_computed_one(monkeypatch):
    exact = euler_with_events(None)
    corrected, run = sampled()
    assert run.trace.skipped_steps >= 8
    assert any("corrected by the computed step after them" in note for note in run.trace.notes), run.trace.notes
    monkeypatch.setattr(SkipCorrection, "after_evaluation", lambda self, step, x, denoised, *rest: denoised)
    uncorrected, same = sampled()
    assert same.trace.mask_text() == run.trace.mask_text()
    error, error_before = (corrected - exact).abs().max(), (uncorrected - exact).abs().max()
    assert error < error_before / 2, (error, error_before)


def test_per_sample_rows_are_corrected_like_the_batch():
    batch, _ = sampled()
    rows, run = sampled(per_sample=True)
    assert any("row-steps were corrected" in note for note in run.trace.notes), run.trace.notes
    assert torch.allclose(rows, batch, atol=1e-5)


def test_a_sampler_whose_steps_are_not_euler_steps_is_left_as_it_is(monkeypatch):
    shifted, run = sampled(x_shift=1e-3)
    assert run.trace.skipped_steps >= 8
    assert not any("corrected" in note for note in run.trace.notes)
    monkeypatch.setattr(SkipCorrection, "after_evaluation", lambda self, step, x, denoised, *rest: denoised)
    untouched, _ = sampled(x_shift=1e-3)
    assert torch.equal(shifted, untouched)


def test_the_paper_mode_never_corrects():
    run = AdaptiveRun(AdaptiveConfig(threshold=0.5, max_skip_steps=4, keep_last_steps=0, noise_reuse="hold"), SIGMAS)
    euler_with_events(run)
    run.finish()
    assert run.correction is None and run.trace.skipped_steps > 0
