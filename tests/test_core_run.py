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


def heun(run: AdaptiveRun, eps_fn, calls: list) -> torch.Tensor:
    return two_call_sampler(run, lambda s, s_next: s_next, [], eps_fn, calls=calls, batch=1)


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
    assert run.router.cache._points == {} and run.decisions.step_inputs == {} and run.latest_input is None
    assert run.decisions.d_history is None
    assert trace.total_steps == len(SIGMAS) - 1
    assert trace.steps[5].d is not None and trace.steps[0].d is None


def noise_of_x(sigma: float, x: torch.Tensor) -> torch.Tensor:
    """A 'model' whose noise depends on the latent too: a reused call is told from a recomputed one."""
    return torch.tanh(x / (1.0 + sigma)) + 0.1 * sigma


def two_call_sampler(run: AdaptiveRun, second_sigma, seen: list, eps_fn=None, fresh_noise: float = 0.0,
                     calls: list | None = None, batch: int = 2) -> torch.Tensor:
    """heun's rhythm (2 evaluations per step, 1 in the last) with the second at second_sigma(s, s_next);
    `seen` gets (step, slot, σ, x, denoised) of every evaluation, `calls` the σ of every real model
    call; fresh_noise > 0 adds new noise after every step, as ancestral samplers do."""
    eps_fn = eps_fn or noise_of_x
    calls = [] if calls is None else calls
    generator = torch.Generator().manual_seed(0)
    x = torch.ones(batch, 2, 4, 4) * SIGMAS[0]
    for i in range(len(SIGMAS) - 1):
        s, s_next = SIGMAS[i], SIGMAS[i + 1]
        run.begin_evaluation(x)
        den = call(run, x, s, eps_fn, calls)
        seen.append((i, 0, s, x, den))
        run.on_step(i)
        d = (x - den) / s
        if s_next == 0:
            x = x + d * (s_next - s)
            continue
        s_mid = second_sigma(s, s_next)
        x_mid = x + d * (s_mid - s)
        run.begin_evaluation(x_mid)
        den_mid = call(run, x_mid, s_mid, eps_fn, calls)
        seen.append((i, 1, s_mid, x_mid, den_mid))
        x = x + ((d + (x_mid - den_mid) / s_mid) / 2) * (s_next - s)
        x = x + fresh_noise * s_next * torch.randn(x.shape, generator=generator)
    return x


def reused_steps(trace) -> list[int]:
    return [k for k, s in enumerate(trace.steps) if s.computed and s.cached_calls == 1 and s.model_calls == 1]


def test_heun_at_a_speed_answers_a_steps_first_call_with_the_previous_steps_last_noise():
    run = AdaptiveRun(AdaptiveConfig(threshold=0.01, speed="1.5x"), SIGMAS)
    seen: list = []
    two_call_sampler(run, lambda s, s_next: s_next, seen)
    trace = run.finish()
    reused = reused_steps(trace)
    assert len(reused) >= 8 and trace.skipped_steps == 0  # 1.5x fits in reuses alone
    assert trace.model_calls == 2 * len(SIGMAS) - 3 - len(reused)
    assert any(f"{len(reused)} steps skipped only their first model call" in note for note in trace.notes)
    corrector = {step: (x, den) for step, slot, _, x, den in seen if slot == 1}
    for step, slot, sigma, x, den in seen:
        if slot == 0 and step in reused:  # x̂0 = x - σ ε(x̃_k, σ_k): the same σ, the corrector's latent
            x_prev, den_prev = corrector[step - 1]
            torch.testing.assert_close(den, x - (x_prev - den_prev), rtol=1e-5, atol=1e-5)
            assert not torch.allclose(den, x - sigma * noise_of_x(sigma, x))


def test_a_midpoint_sampler_answers_the_first_call_from_its_midpoint_calls():
    def midpoint(s, s_next):  # dpm_2's second call
        return (s * s_next) ** 0.5
    full = two_call_sampler(AdaptiveRun(AdaptiveConfig(threshold=0.0), SIGMAS), midpoint, [], noise_linear_in_sigma)
    run = AdaptiveRun(AdaptiveConfig(threshold=0.01, speed="1.5x", noise_reuse="linear"), SIGMAS)
    fast = two_call_sampler(run, midpoint, [], noise_linear_in_sigma)
    trace = run.finish()
    assert len(reused_steps(trace)) >= 8 and trace.skipped_steps == 0
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)  # linear noise: the midpoints extrapolate it exactly


def test_fresh_noise_every_step_refuses_the_reuses_too():
    run = AdaptiveRun(AdaptiveConfig(threshold=0.01, speed="2x"), SIGMAS)
    two_call_sampler(run, lambda s, s_next: s_next, [], fresh_noise=0.5)
    trace = run.finish()
    assert trace.skipped_steps == 0 and reused_steps(trace) == []
    assert trace.model_calls == 2 * len(SIGMAS) - 3
    assert any(note.startswith("no skips: the warm-up's last step missed") for note in trace.notes)


def test_a_forced_plan_replaces_the_speeds_plan_and_keeps_its_refusals():
    import pytest
    forced = [False] * 21
    forced[6] = forced[9] = forced[14] = True
    run = AdaptiveRun(AdaptiveConfig(threshold=0.01, speed="2x", noise_reuse="quadratic"), SIGMAS, forced_plan=forced)
    euler(run, noise_linear_in_sigma, [])
    assert [not s.computed for s in run.finish().steps] == forced  # not the speed's own plan
    planned = AdaptiveRun(AdaptiveConfig(threshold=0.01, speed="2x", noise_reuse="quadratic"), SIGMAS)
    euler(planned, noise_linear_in_sigma, [])
    assert planned.finish().skipped_steps == 11

    def wild(sigma: float, x: torch.Tensor) -> torch.Tensor:  # no prediction can follow it
        return noise_linear_in_sigma(sigma, x) * (1.0 + 3.0 * (round(sigma * 10) % 3))
    refusing = AdaptiveRun(AdaptiveConfig(threshold=0.01, speed="2x"), SIGMAS, forced_plan=forced)
    euler(refusing, wild, [])
    trace = refusing.finish()
    assert trace.skipped_steps < 3 and any("planned skips refused" in note for note in trace.notes), trace.notes
    with pytest.raises(ValueError, match="forced_plan"):
        AdaptiveRun(AdaptiveConfig(threshold=0.01), SIGMAS, forced_plan=forced)  # no speed: nothing to replace
