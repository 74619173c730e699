"""AdaptiveRun driven by small pure-torch samplers (no ComfyUI): events, cache, skip paths."""
from __future__ import annotations

import torch

from adaptive_core import AdaptiveConfig, AdaptiveRun

SIGMAS = torch.linspace(10.0, 0.5, 21).tolist() + [0.0]


def noise_linear_in_sigma(sigma: float, x: torch.Tensor) -> torch.Tensor:
    """A 'model' whose noise prediction is exactly linear in σ (and ignores x)."""
    base = torch.linspace(-1, 1, x[0].numel()).reshape(x.shape[1:])
    return (0.3 + 0.05 * sigma) * base.expand_as(x)


def call(run: AdaptiveRun, x: torch.Tensor, sigma: float, eps_fn, calls: list) -> torch.Tensor:
    def compute():
        calls.append(sigma)
        return x - sigma * eps_fn(sigma, x)
    return run.model_call(compute, x, torch.full((x.shape[0],), sigma), [("cond", None)])


def euler(run: AdaptiveRun, eps_fn, calls: list) -> torch.Tensor:
    x = torch.ones(1, 2, 4, 4) * SIGMAS[0]
    for i in range(len(SIGMAS) - 1):
        run.begin_evaluation(x)
        denoised = call(run, x, SIGMAS[i], eps_fn, calls)
        run.on_step(i)
        x = x + (x - denoised) / SIGMAS[i] * (SIGMAS[i + 1] - SIGMAS[i])
    return x


def heun(run: AdaptiveRun, eps_fn, calls: list) -> torch.Tensor:
    x = torch.ones(1, 2, 4, 4) * SIGMAS[0]
    for i in range(len(SIGMAS) - 1):
        s, s_next = SIGMAS[i], SIGMAS[i + 1]
        run.begin_evaluation(x)
        d = (x - call(run, x, s, eps_fn, calls)) / s
        run.on_step(i)
        x_euler = x + d * (s_next - s)
        if s_next == 0:
            x = x_euler
            continue
        run.begin_evaluation(x_euler)
        d_next = (x_euler - call(run, x_euler, s_next, eps_fn, calls)) / s_next
        x = x + (d + d_next) / 2 * (s_next - s)
    return x


def test_linear_noise_is_reproduced_exactly_by_linear_reuse_on_skipped_steps():
    full = euler(AdaptiveRun(AdaptiveConfig(threshold=0.0), SIGMAS), noise_linear_in_sigma, [])
    calls: list = []
    run = AdaptiveRun(AdaptiveConfig(threshold=0.5, noise_reuse="linear"), SIGMAS)
    fast = euler(run, noise_linear_in_sigma, calls)
    trace = run.finish()
    assert trace.skipped_steps > 0 and len(calls) == trace.model_calls
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)
    held = AdaptiveRun(AdaptiveConfig(threshold=0.5, noise_reuse="hold"), SIGMAS)
    assert (euler(held, noise_linear_in_sigma, []) - full).abs().max() > 1e-3


def test_heun_skips_whole_steps_and_extrapolates_each_evaluation_slot_separately():
    full = heun(AdaptiveRun(AdaptiveConfig(threshold=0.0), SIGMAS), noise_linear_in_sigma, [])
    calls: list = []
    run = AdaptiveRun(AdaptiveConfig(threshold=0.5, noise_reuse="linear"), SIGMAS)
    fast = heun(run, noise_linear_in_sigma, calls)
    trace = run.finish()
    assert trace.skipped_steps > 0
    assert all(s.model_calls == 0 and s.cached_calls == 2 for s in trace.steps if not s.computed)
    assert len(calls) == trace.model_calls
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)


def test_a_replayed_skip_path_is_followed_and_recorded():
    path = [False] * 4 + [True, False] * 8 + [False]
    run = AdaptiveRun(AdaptiveConfig(threshold=0.01), SIGMAS, skip_path=path)
    euler(run, noise_linear_in_sigma, [])
    trace = run.finish()
    assert [not s.computed for s in trace.steps] == path


def test_finish_drops_every_tensor_and_keeps_the_record():
    run = AdaptiveRun(AdaptiveConfig(threshold=0.5), SIGMAS)
    euler(run, noise_linear_in_sigma, [])
    trace = run.finish()
    assert run.cache._points == {} and run.step_inputs == {} and run.latest_input is None
    assert trace.total_steps == len(SIGMAS) - 1
    assert trace.steps[5].d is not None and trace.steps[0].d is None
