"""The noise cache's hold / linear / quadratic rules on synthetic ε(σ), without ComfyUI."""
from __future__ import annotations

import pytest
import torch

from adaptive_core import NoiseCache, extrapolate, implied_noise
from adaptive_core.noise_cache import NoisePoint, row_sigma

BASE = torch.linspace(-1.0, 1.0, 2 * 3 * 4 * 4).reshape(2, 3, 4, 4)


def close(actual, expected):
    """Equal up to float32 rounding (σ is kept in float32, as the cache does)."""
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5, check_dtype=False)


def eps_of(sigma: float, order: int) -> torch.Tensor:
    """A noise field that is constant, linear or quadratic in σ."""
    coefficients = {0: (1.0, 0.0, 0.0), 1: (1.0, 0.7, 0.0), 2: (1.0, 0.7, -0.3)}[order]
    a, b, c = coefficients
    return BASE * a + b * sigma + c * sigma ** 2 * BASE


def points(sigmas, order):
    like = BASE
    return [NoisePoint(row_sigma(torch.tensor(s), like), eps_of(s, order).double(), i)
            for i, s in enumerate(sigmas)]


@pytest.mark.parametrize("mode,order", [("hold", 0), ("linear", 1), ("quadratic", 2)])
def test_each_mode_reproduces_its_own_order_exactly(mode, order):
    history = points([14.0, 9.5, 6.0], order)
    target = torch.tensor(3.2, dtype=torch.float64)
    predicted = extrapolate(history, row_sigma(target, BASE).double(), mode)
    close(predicted, eps_of(3.2, order).double())


def test_lower_modes_miss_higher_orders():
    history = points([14.0, 9.5, 6.0], 2)
    sigma = row_sigma(torch.tensor(3.2), BASE).double()
    exact = eps_of(3.2, 2).double()
    assert (extrapolate(history, sigma, "linear") - exact).abs().max() > 1e-3
    assert (extrapolate(history, sigma, "hold") - exact).abs().max() > 1e-3


def test_fallback_to_lower_order_with_fewer_points():
    sigma = row_sigma(torch.tensor(3.2), BASE).double()
    one = points([6.0], 1)
    close(extrapolate(one, sigma, "quadratic"), one[0].value)
    two = points([9.5, 6.0], 1)
    close(extrapolate(two, sigma, "quadratic"), eps_of(3.2, 1).double())
    close(extrapolate(two, sigma, "linear"), eps_of(3.2, 1).double())


def test_equal_sigmas_fall_back_instead_of_dividing_by_zero():
    sigma = row_sigma(torch.tensor(3.2), BASE).double()
    same = points([6.0, 6.0], 1)
    assert torch.isfinite(extrapolate(same, sigma, "linear")).all()


def test_sigma_is_per_row():
    # Two rows with different σ: each row is extrapolated at its own σ.
    history = [NoisePoint(row_sigma(torch.tensor([s, s + 1.0]), BASE).double(),
                          torch.stack([eps_of(s, 1)[0], eps_of(s + 1.0, 1)[1]]).double(), i)
               for i, s in enumerate([9.0, 6.0])]
    target = row_sigma(torch.tensor([3.0, 4.0]), BASE).double()
    predicted = extrapolate(history, target, "linear")
    close(predicted[0], eps_of(3.0, 1)[0].double())
    close(predicted[1], eps_of(4.0, 1)[1].double())


def test_cache_answers_x_minus_sigma_eps_on_output_channels():
    cache = NoiseCache("hold")
    x = torch.randn(2, 3, 4, 4)
    denoised = torch.randn(2, 3, 4, 4)
    sigma = torch.tensor([2.0, 2.0])
    cache.store("cond", sigma, implied_noise(x, denoised, sigma), evaluation=0)
    close(cache.answer("cond", x, sigma, 3), denoised)
    wider = torch.cat([x, torch.randn(2, 5, 4, 4)], dim=1)  # e.g. concat channels on the input
    assert cache.can_answer("cond", wider)
    assert cache.answer("cond", wider, sigma, 3).shape == denoised.shape
    assert not cache.can_answer("cond", torch.randn(3, 3, 4, 4))  # other batch size
    assert not cache.can_answer("uncond", x)


@pytest.mark.parametrize("gap", [0.0, 1e-7, 1e-5])
def test_near_equal_sigmas_do_not_blow_up_the_extrapolation(gap):
    # Repeated karras tail values (gap 0) or churn's σ_hat next to σ: ε differs only by the
    # model's noise, and dividing by the tiny σ gap would multiply that noise by up to 1e7.
    torch.manual_seed(0)
    older = eps_of(1.0, 1) + 1e-3 * torch.randn_like(BASE)
    newer = eps_of(1.0 + gap, 1) + 1e-3 * torch.randn_like(BASE)
    history = [NoisePoint(row_sigma(torch.tensor(s), BASE), e, i)
               for i, s, e in ((0, 2.0, eps_of(2.0, 1)), (1, 1.0, older), (2, 1.0 + gap, newer))]
    sigma = row_sigma(torch.tensor(0.5), BASE)
    for mode in ("linear", "quadratic"):
        predicted = extrapolate(history, sigma, mode)
        assert torch.isfinite(predicted).all()
        assert (predicted - newer).abs().max() < 0.1, mode  # falls back to holding the newest


def test_near_equal_sigma_fallback_is_per_row():
    # Row 0's last two σ coincide, row 1's do not: only row 0 falls back.
    sig = lambda a, b: row_sigma(torch.tensor([a, b]), BASE)  # noqa: E731
    history = [NoisePoint(sig(2.0, 2.0), torch.stack([eps_of(2.0, 1)[0], eps_of(2.0, 1)[1]]), 0),
               NoisePoint(sig(2.0, 1.0), torch.stack([eps_of(2.0, 1)[0], eps_of(1.0, 1)[1]]), 1)]
    predicted = extrapolate(history, sig(0.5, 0.5), "linear")
    close(predicted[0], eps_of(2.0, 1)[0])
    close(predicted[1], eps_of(0.5, 1)[1])


def test_a_point_may_cover_only_some_rows():
    # per_sample: a call computed rows 0 and 2 only; row 1 keeps its own, older history.
    cache = NoiseCache("linear")
    x = torch.zeros(3, 3, 4, 4)
    full = lambda s: eps_of(s, 1)[:1].expand(3, -1, -1, -1)  # noqa: E731
    cache.store("c", torch.full((3,), 4.0), full(4.0), 0)
    cache.store("c", torch.full((3,), 3.0), full(3.0), 1)
    cache.store("c", torch.full((2,), 2.0), full(2.0)[:2], 2, rows=[0, 2], chunk_rows=3)
    assert cache.can_answer("c", x) and cache.can_answer("c", x, (1,))
    out = cache.answer("c", x, torch.full((3,), 1.0))
    expected = -1.0 * eps_of(1.0, 1)[:1]
    for row in range(3):
        close(out[row:row + 1], expected)
    close(cache.answer("c", x, torch.full((3,), 1.0), rows=[1]), expected)


def test_extrapolating_linearly_answers_from_two_points_and_keeps_three_for_the_estimate():
    """What a flow-matching run (and x̂0 prediction) sets on the default quadratic mode."""
    from adaptive_core import prediction_gap
    from adaptive_core import CacheKey
    key = CacheKey("c", 0, 0)
    cache = NoiseCache("quadratic")
    cache.extrapolate_linearly()
    sigmas = [5.0, 4.0, 3.0, 2.0]
    for i, s in enumerate(sigmas):
        cache.store(key, torch.full((2,), s), eps_of(s, 2), i)
    cache.drop_spare()
    x = torch.zeros_like(BASE)
    answer = cache.answer(key, x, torch.full((2,), 1.5))
    linear = eps_of(2.0, 2) + (eps_of(2.0, 2) - eps_of(3.0, 2)) * (1.5 - 2.0) / (2.0 - 3.0)
    close(answer, x - 1.5 * linear)  # the linear extrapolation, not the exact quadratic
    (kept,) = cache.newest_points(0)
    assert len(kept) == 3 and prediction_gap(kept, 1.5).max() > 0  # the estimate still sees the curvature
    for mode in ("hold", "linear"):  # a user's own choice is kept
        other = NoiseCache(mode)
        other.extrapolate_linearly()
        assert other.mode == mode


def test_a_flow_matching_run_extrapolates_linearly():
    from adaptive_core import AdaptiveConfig, AdaptiveRun
    sigmas = [1.0 - k / 10 for k in range(11)]
    assert AdaptiveRun(AdaptiveConfig(speed="2x"), sigmas, flow_matching=True).router.cache.mode == "linear"
    assert AdaptiveRun(AdaptiveConfig(speed="2x"), sigmas).router.cache.mode == "quadratic"
