"""The correction of a skipped step by the computed step after it (adaptive_core/correction.py)."""
from __future__ import annotations

import math

import pytest
import torch

from adaptive_core import AdaptiveConfig, AdaptiveRun
from adaptive_core.correction import (SkipCorrection, fitted_step, history_weights, multistep_x, row_family,
                                     shifted_denoised)
from adaptive_core.noise_cache import NoisePoint, extrapolate

SIGMAS = torch.linspace(10.0, 0.5, 21).tolist() + [0.0]


def test_the_interpolation_between_points_reproduces_a_quadratic_exactly():
    f = lambda s: 2.0 - 0.5 * s + 0.25 * s * s  # noqa: E731
    points = [NoisePoint(torch.tensor(s), torch.tensor([f(s)]), tag) for tag, s in enumerate([4.0, 2.5, 1.0])]
    assert float(extrapolate(points, 3.1, "quadratic")) == pytest.approx(f(3.1))


@pytest.mark.parametrize("c", [0.0, 0.6])
def test_the_shifted_denoised_makes_a_step_land_as_if_from_the_corrected_latent(c):
    torch.manual_seed(0)
    x, denoised, before, error = (torch.randn(3, 4, 8, 8) for _ in range(4))
    sigma, sigma_next = 2.0, 1.5
    shifted = shifted_denoised(denoised, 0.1 * error, 1.0, 1.0 + c, sigma, sigma_next)
    assert torch.allclose(multistep_x(x, shifted, before, c, sigma, sigma_next),
                          multistep_x(x - 0.1 * error, denoised, before, c, sigma, sigma_next), atol=1e-5)


def res_multistep_step(x, denoised, denoised_before, sigma_before: float, sigma: float, sigma_next: float):
    """ComfyUI's res_multistep step (eta 0), written with its φ functions."""
    t, t_next, t_before = -math.log(sigma), -math.log(sigma_next), -math.log(sigma_before)
    h = t_next - t
    phi1 = math.expm1(-h) / -h
    phi2 = (phi1 - 1.0) / -h
    c2 = (t_before - t) / h
    return math.exp(-h) * x + h * ((phi1 - phi2 / c2) * denoised + (phi2 / c2) * denoised_before)


def test_each_row_is_told_the_formula_its_sampler_stepped_with():
    torch.manual_seed(1)
    x, denoised, before = (torch.randn(4, 4, 8, 8) for _ in range(3))
    sigmas = [3.0, 2.0, 1.5, 0.0]
    weights = history_weights(sigmas, 1)
    after = torch.stack([multistep_x(x[0], denoised[0], before[0], weights[0], 2.0, 1.5),  # euler
                         multistep_x(x[1], denoised[1], before[1], weights[1], 2.0, 1.5),  # dpmpp_2m
                         res_multistep_step(x[2], denoised[2], before[2], 3.0, 2.0, 1.5),
                         multistep_x(x[3], denoised[3], before[3], weights[1], 2.0, 1.5) + 0.01])  # another
    assert row_family(x, after, denoised, before, weights, 2.0, 1.5).tolist() == [0, 1, 2, -1]
    # DPM-Solver++(2M): c = 1 / (2 r), r = log(3/2) / log(2/1.5); the first and last steps are Euler steps
    assert weights[1] == pytest.approx(0.5 * math.log(2 / 1.5) / math.log(1.5))
    assert history_weights(sigmas, 0) == [0.0] * 3 and history_weights(sigmas, 2) == [0.0] * 3


def test_a_step_linear_in_the_last_four_x0s_is_fitted_and_its_newest_weight_read_as_q():
    torch.manual_seed(2)
    x, *denoised = (torch.randn(2, 4, 16, 16) for _ in range(5))
    handed = [(d, torch.randn_like(x), 2.5) for d in denoised]
    handed[0] = (denoised[0], x, 2.0)
    keep = 0.8  # σ 2.0 -> 1.6
    weights = torch.tensor([0.46, -0.31, 0.07, -0.02])  # sums to 1 - A, as any consistent step's do
    step = keep * x + sum(w * d for w, d in zip(weights, denoised))
    p, q, fits = fitted_step(handed, step, 1.6)
    assert fits.tolist() == [True, True]
    assert q.tolist() == pytest.approx([0.46 / 0.2] * 2, abs=1e-4) and p.tolist() == [1.0, 1.0]
    elsewhere = step + 1e-3 * torch.randn_like(step)  # a direction no handed x̂0 has: not a linear step
    assert fitted_step(handed, elsewhere, 1.6)[2].tolist() == [False, False]
    far = keep * x + 0.02 * denoised[0] + 0.18 * denoised[1]  # q = 0.02 / 0.2 = 0.1: not trusted
    assert fitted_step(handed, far, 1.6)[2].tolist() == [False, False]


def test_a_step_linear_in_the_last_four_noises_is_fitted_as_an_adams_step():
    torch.manual_seed(3)
    sigmas = [2.0, 2.4, 2.9, 3.5]  # newest first
    handed = [(torch.randn(2, 4, 16, 16), torch.randn(2, 4, 16, 16), s) for s in sigmas]
    eps = [(x - d) / s for d, x, s in handed]
    # iPNDM's fourth-order step as ComfyUI writes it, σ 2.0 -> 1.6
    step = handed[0][1] + (1.6 - 2.0) * (55 * eps[0] - 59 * eps[1] + 37 * eps[2] - 9 * eps[3]) / 24
    p, q, fits = fitted_step(handed, step, 1.6)
    assert fits.tolist() == [True, True]
    assert q.tolist() == pytest.approx([55 / 24] * 2, abs=1e-4) and p.tolist() == pytest.approx(q.tolist())
    # and the shift that p, q give makes such a step land as if it started from the corrected latent
    x, d, error = handed[0][1], handed[0][0], 0.01 * torch.randn_like(handed[0][1])

    def adams(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        return x + (1.6 - 2.0) * (55 * (x - d) / 2.0 - 59 * eps[1] + 37 * eps[2] - 9 * eps[3]) / 24
    shifted = shifted_denoised(d, error, p.reshape(2, 1, 1, 1), q.reshape(2, 1, 1, 1), 2.0, 1.6)
    assert torch.allclose(adams(x, shifted), adams(x - error, d), atol=1e-4)


def cubic_noise(sigma: float, x: torch.Tensor) -> torch.Tensor:
    """Noise that a quadratic extrapolation misses (and ignores x): the skips make an error."""
    base = torch.linspace(-1, 1, x[0].numel()).reshape(x.shape[1:])
    return (0.3 + 0.05 * sigma + 0.01 * sigma ** 2 - 0.002 * sigma ** 3) * base.expand_as(x)


def sample_with_events(run: AdaptiveRun | None, sampler: str = "euler", x_shift: float = 0.0) -> torch.Tensor:
    """Euler or DPM-Solver++(2M) (as ComfyUI writes them) through AdaptiveRun's events, as the
    host drives it (None: plain sampling); x_shift > 0 adds a new pattern at every step, so that it
    follows no formula and is linear in no recent x̂0s."""
    x, denoised_before = torch.ones(2, 1, 4, 4) * SIGMAS[0], None
    patterns = torch.Generator().manual_seed(5)
    for i in range(len(SIGMAS) - 1):
        sigma, sigma_next = SIGMAS[i], SIGMAS[i + 1]
        pattern = torch.randn(2, 1, 4, 4, generator=patterns)
        if run is None:
            denoised = x - sigma * cubic_noise(sigma, x)
        else:
            run.begin_evaluation(x)
            denoised = run.model_call(lambda x=x: x - sigma * cubic_noise(sigma, x), x,
                                      torch.full((x.shape[0],), sigma), [("cond", None)])
            denoised = run.end_evaluation(x, denoised)
            run.on_step(i)
        if sampler == "euler" or denoised_before is None or sigma_next == 0:
            x = x + (x - denoised) / sigma * (sigma_next - sigma) + x_shift * pattern
        else:
            h, h_last = math.log(sigma / sigma_next), math.log(SIGMAS[i - 1] / sigma)
            c = 1 / (2 * h_last / h)
            x = (sigma_next / sigma) * x - math.expm1(-h) * ((1 + c) * denoised - c * denoised_before) + x_shift * pattern
        denoised_before = denoised
    return x


def sampled(sampler: str = "euler", x_shift: float = 0.0, per_sample: bool = False) -> tuple[torch.Tensor, AdaptiveRun]:
    run = AdaptiveRun(AdaptiveConfig(threshold=0.01, speed="2x", per_sample=per_sample), SIGMAS)
    x = sample_with_events(run, sampler, x_shift)
    run.finish()
    return x, run


@pytest.mark.parametrize("sampler, gain", [("euler", 2.0), ("dpmpp_2m", 1.4)])
def test_a_skipped_step_is_corrected_by_the_next_computed_one(monkeypatch, sampler, gain):
    exact = sample_with_events(None, sampler)
    corrected, run = sampled(sampler)
    assert run.trace.skipped_steps >= 8
    assert any("corrected by the computed step after them" in note for note in run.trace.notes), run.trace.notes
    monkeypatch.setattr(SkipCorrection, "after_evaluation", lambda self, step, x, denoised, *rest: denoised)
    uncorrected, same = sampled(sampler)
    assert same.trace.mask_text() == run.trace.mask_text()
    error, error_before = (corrected - exact).abs().max(), (uncorrected - exact).abs().max()
    assert error < error_before / gain, (error, error_before)


@pytest.mark.parametrize("sampler", ["euler", "dpmpp_2m"])
def test_per_sample_rows_are_corrected_like_the_batch(sampler):
    batch, _ = sampled(sampler)
    rows, run = sampled(sampler, per_sample=True)
    assert any("row-steps were corrected" in note for note in run.trace.notes), run.trace.notes
    assert torch.allclose(rows, batch, atol=1e-5)


@pytest.mark.parametrize("sampler", ["euler", "dpmpp_2m"])
def test_a_sampler_that_follows_neither_formula_is_left_as_it_is(monkeypatch, sampler):
    shifted, run = sampled(sampler, x_shift=1e-3)
    assert run.trace.skipped_steps >= 8
    assert not any("corrected" in note for note in run.trace.notes)
    monkeypatch.setattr(SkipCorrection, "after_evaluation", lambda self, step, x, denoised, *rest: denoised)
    untouched, _ = sampled(sampler, x_shift=1e-3)
    assert torch.equal(shifted, untouched)


def test_the_paper_mode_never_corrects():
    run = AdaptiveRun(AdaptiveConfig(threshold=0.5, max_skip_steps=4, keep_last_steps=0, noise_reuse="hold"), SIGMAS)
    sample_with_events(run)
    run.finish()
    assert run.correction is None and run.trace.skipped_steps > 0
