"""The asked speed where one plan is not enough (no ComfyUI): two sampler nodes sharing one schedule
(ScheduleStage), and planned skips that the error estimate refuses (given a later step)."""
from __future__ import annotations

import math

import torch

from adaptive_core import AdaptiveConfig, AdaptiveRun
from adaptive_core.decision import SWITCH_WARMUP, ScheduleStage, skip_budget, speed_plan

SPEED = dict(threshold=0.01, speed="2x", noise_reuse="quadratic")


def flow_schedule(steps: int, shift: float = 8.0) -> list[float]:
    """ComfyUI's `simple` schedule of a flow model with a shift: σ = s t / (1 + (s - 1) t), t 1 → 0."""
    ts = [1.0 - i / steps for i in range(steps)]
    return [shift * t / (1.0 + (shift - 1.0) * t) for t in ts] + [0.0]


def smooth_noise(sigma: float, x: torch.Tensor) -> torch.Tensor:
    base = torch.linspace(-1, 1, x[0].numel()).reshape(x.shape[1:])
    return (0.3 + 0.4 * sigma + 0.2 * sigma * sigma) * base.expand_as(x)


def euler(run: AdaptiveRun, sigmas: list[float], noise, x: torch.Tensor, calls: list) -> torch.Tensor:
    """Euler over `sigmas` through the run's events, as ComfyUI's sampler drives them."""
    run.sampler_started("sample_euler")
    for i in range(len(sigmas) - 1):
        run.begin_evaluation(x)

        def compute(sigma=sigmas[i], x=x):
            calls.append(sigma)
            return x - sigma * noise(sigma, x)
        denoised = run.model_call(compute, x, torch.full((x.shape[0],), sigmas[i]), [("cond", None)])
        denoised = run.end_evaluation(x, denoised)
        run.on_step(i)
        x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    return x


def two_stages(sigmas: list[float], switch: int, noise=smooth_noise, config=None, flow_matching: bool = False):
    """Two runs over one schedule, as two Adaptive KSampler (Advanced) nodes: steps 0..switch-1
    (leftover noise), then switch..end. Returns (latent, traces, calls per stage)."""
    config = config or AdaptiveConfig(**SPEED)
    steps = len(sigmas) - 1
    x, traces, calls = torch.ones(1, 2, 4, 4) * sigmas[0], [], []
    for start, end in ((0, switch), (switch, steps)):
        stage = ScheduleStage(tuple(sigmas), start, end - start)
        run = AdaptiveRun(config, sigmas[start:end + 1], stage=stage, flow_matching=flow_matching)
        made: list = []
        x = euler(run, sigmas[start:end + 1], noise, x, made)
        traces.append(run.finish())
        calls.append(len(made))
    return x, traces, calls


def test_both_stages_take_their_share_of_one_plan_and_reach_the_asked_speed_together():
    sigmas = flow_schedule(40)
    whole = ScheduleStage(tuple(sigmas), 0, 20).whole_plan(2.0, warmup=4, keep_last=1, max_skip_steps=4)
    assert sum(whole) == skip_budget(2.0, 40) == 20
    _, traces, calls = two_stages(sigmas, 20)
    assert sum(calls) == 20  # 2x over the whole schedule, not per node
    first, second = traces
    assert [not s.computed for s in first.steps + second.steps] == whole
    assert first.stage == (0, 40) and second.stage == (20, 40)
    assert any("planned over the whole schedule" in note for note in second.notes)
    # the second node's model is new: its first steps are computed until its predictor has its points
    assert all(s.computed for s in second.steps[:SWITCH_WARMUP])
    # keep_last_steps keeps the schedule's end: the first node's last steps may be skipped
    assert (first.kept_last_steps, second.kept_last_steps) == (0, 1)
    assert not second.steps[SWITCH_WARMUP].computed  # its first skip once its quadratic has 3 points


def test_a_flow_models_second_stage_skips_once_its_linear_prediction_has_two_points():
    sigmas = flow_schedule(20)
    _, traces, calls = two_stages(sigmas, 6, flow_matching=True)
    first, second = traces
    assert second.switch_warmup == 2
    # its first skips come before the error estimate has its 3 points, and the trace says so
    assert any(note.startswith("after the switch the plan goes unchecked") for note in second.notes)
    assert not any("unchecked" in note for note in first.notes)
    assert [s.computed for s in second.steps[:3]] == [True, True, False], second.mask_text()
    whole = ScheduleStage(tuple(sigmas), 0, 6).whole_plan(2.0, warmup=4, keep_last=1, max_skip_steps=4,
                                                            switch_warmup=2, longer_runs_when_tight=True)
    assert [not s.computed for s in first.steps + second.steps] == whole
    assert sum(calls) == 10  # 2x over the whole schedule, the switch included
    quadratic = two_stages(sigmas, 6)[1][1]  # without flow_matching: three points of the new model first
    assert [s.computed for s in quadratic.steps[:4]] == [True, True, True, False], quadratic.mask_text()
    assert not any("unchecked" in note for note in quadratic.notes)


def test_two_stages_plan_no_worse_than_two_nodes_planning_alone():
    sigmas = flow_schedule(20)
    _, traces, staged = two_stages(sigmas, 10)
    alone = 0
    for start, end in ((0, 10), (10, 20)):
        run = AdaptiveRun(AdaptiveConfig(**SPEED), sigmas[start:end + 1])
        made: list = []
        euler(run, sigmas[start:end + 1], smooth_noise, torch.ones(1, 2, 4, 4), made)
        run.finish()
        alone += len(made)
    assert sum(staged) <= alone
    # 20 steps, 10 + 10: the warm-up (4), the new model's first 3 (quadratic), the last step and
    # the long step before it leave room for 9 skips, and the trace says so
    assert sum(staged) == 11, staged
    assert all("room for only 9 of the 10 skips" in " ".join(trace.notes) for trace in traces)
    assert all("(asked 2x over the 20-step schedule it shares), less than asked: room for only 9" in trace.summary()
               for trace in traces), traces[0].summary()


def test_a_short_plan_says_how_many_skips_the_schedule_has_room_for():
    sigmas = flow_schedule(20)
    _, traces, calls = two_stages(sigmas, 10)
    if sum(calls) > 10:
        assert any("room for only 9 of the 10 skips 2x asks for" in note for note in traces[0].notes)
    run = AdaptiveRun(AdaptiveConfig(**SPEED), flow_schedule(8))
    euler(run, flow_schedule(8), smooth_noise, torch.ones(1, 2, 4, 4), [])
    trace = run.finish()
    assert any(note.startswith("room for only") and "of the 4 skips 2x asks for" in note for note in trace.notes)
    assert "less than the asked 2x: room for only" in trace.summary(), trace.summary()


def bumpy_noise(bump_sigma: float):
    """Smooth noise with a kink at one σ: the estimate refuses the skips that extrapolate across it."""
    def noise(sigma: float, x: torch.Tensor) -> torch.Tensor:
        kink = 0.6 if abs(sigma - bump_sigma) < 1e-6 else 0.0
        return smooth_noise(sigma, x) * (1.0 + kink)
    return noise


def test_a_refused_skip_is_moved_to_a_later_step_and_the_speed_holds():
    sigmas = flow_schedule(30, shift=1.0)  # no long step at the end (whose rule computes skips too)
    plan = speed_plan(2.0, sigmas, 4, 29, 4)
    computed_early = next(k for k in range(4, 29) if not plan[k])  # a computed step in the plan's window
    calls: list = []
    run = AdaptiveRun(AdaptiveConfig(**SPEED), sigmas)
    euler(run, sigmas, bumpy_noise(sigmas[computed_early]), torch.ones(1, 2, 4, 4), calls)
    trace = run.finish()
    refused = next(note for note in trace.notes if "planned skips refused" in note)
    assert "moved to a later step" in refused, trace.notes
    assert abs(len(calls) - math.ceil(30 / 2)) <= 1, (len(calls), trace.mask_text(), trace.notes)


def test_fresh_noise_is_refused_without_moving_skips_to_the_end():
    sigmas = flow_schedule(20)
    generator = torch.Generator().manual_seed(0)

    def fresh(sigma: float, x: torch.Tensor) -> torch.Tensor:
        return torch.randn(x.shape, generator=generator)
    run = AdaptiveRun(AdaptiveConfig(**SPEED), sigmas)
    calls: list = []
    euler(run, sigmas, fresh, torch.ones(1, 2, 4, 4), calls)
    trace = run.finish()
    assert len(calls) == 20 and trace.skipped_steps == 0, trace.mask_text()
