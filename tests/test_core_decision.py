"""The skip decision on tensors (adaptive_core/decision.py through AdaptiveRun), without ComfyUI:
hand-made d sequences, the paper mode against the paper's rule, the speed plan, the error estimate."""
from __future__ import annotations

import itertools
import math
import random

import pytest
import torch

from adaptive_core import AdaptiveConfig, AdaptiveRun, should_skip
from adaptive_core.decision import (RUN_GROWTH, UNCORRECTED, cheapest_skips, even_spread, most_skips, plan_skips,
                                    long_step, reuse_plan, reused_by_long_step, skip_cost, speed_plan)
from adaptive_core.decision_state import DecisionState
from adaptive_core.noise_cache import NoisePoint, prediction_gap, row_sigma

PAPER = dict(noise_reuse="hold", max_skip_steps=4, keep_last_steps=0)


def replay(d_rows: list[list[float]], config: AdaptiveConfig) -> tuple[list[list[bool]], list[list[float]]]:
    """Drive a run (one evaluation per step) through latents whose per-row differences are d_rows
    (d_rows[row][k], k >= 1). Returns each row's skip mask and the float32 d the run saw."""
    rows, steps = len(d_rows), len(d_rows[0])
    sigmas = [float(steps - k) for k in range(steps)] + [0.0]
    run = AdaptiveRun(config, sigmas)
    x = torch.zeros(rows, 1, 1, 1)
    seen = [[0.0] * steps for _ in range(rows)]
    for k in range(steps):
        if k:
            step = torch.tensor([d[k] for d in d_rows]).reshape(rows, 1, 1, 1)
            new = x + step
            for row in range(rows):
                seen[row][k] = float((new[row] - x[row]).abs().mean())
            x = new
        run.begin_evaluation(x)
        # Rows can be computed alone (as ComfyUI's splittable conditioning allows): a row decided
        # skipped is then really skipped, and the trace reports what ran.
        run.model_call(lambda: x * 0.5, x, torch.full((rows,), sigmas[k]), [("cond", None)],
                       compute_rows=lambda indices, x=x: x[indices] * 0.5)
        run.on_step(k)
    trace = run.finish()
    return [[not c for c in row] for row in trace.rows], seen


def paper_mask(d: list[float], config: AdaptiveConfig) -> list[bool]:
    """The paper's rule, step by step, in plain Python (criterion.should_skip)."""
    history: list[float | None] = [None] + d[1:]
    in_a_row, mask = 0, []
    for k in range(len(d)):
        skip = should_skip(history, k, len(d), in_a_row, config)
        in_a_row = in_a_row + 1 if skip else 0
        mask.append(skip)
    return mask


def wobbly_d(rng: random.Random, steps: int, wobble: float) -> list[float]:
    """A smooth decay with relative noise `wobble`: the criterion hovers around small δ."""
    return [0.0] + [(1.0 + 0.3 * k) ** -1.2 * (1.0 + rng.uniform(-wobble, wobble)) for k in range(1, steps)]


@pytest.mark.parametrize("delta", [0.005, 0.01, 0.03])
@pytest.mark.parametrize("seed", range(4))
def test_paper_mode_is_the_papers_rule_exactly_on_hand_made_sequences(delta, seed):
    rng = random.Random(seed)
    d = wobbly_d(rng, 30, wobble=0.02)
    config = AdaptiveConfig(threshold=delta, **PAPER)
    masks, seen = replay([d], config)
    assert masks[0] == paper_mask(seen[0], config)


def test_paper_mode_per_sample_decides_each_row_by_the_papers_rule():
    rng = random.Random(7)
    d_rows = [wobbly_d(rng, 30, wobble=w) for w in (0.0, 0.01, 0.05)]
    config = AdaptiveConfig(threshold=0.01, per_sample=True, **PAPER)
    masks, seen = replay(d_rows, config)
    expected = [paper_mask(row, config) for row in seen]
    assert masks == expected
    assert any(expected[0]) and expected[0] != expected[2]  # the rows really differ


def test_paper_mode_runs_up_to_cmax_skips_in_a_row_on_a_linear_path():
    d = [0.0] + [10.0 - 0.25 * k for k in range(1, 20)]  # second difference exactly 0
    masks, _ = replay([d], AdaptiveConfig(threshold=0.01, **PAPER))
    assert masks[0] == [False] * 4 + [True] * 4 + [False] + [True] * 4 + [False] + [True] * 4 + [False] + [True]


def longest_run(mask: list[bool]) -> int:
    best = count = 0
    for skip in mask:
        count = count + 1 if skip else 0
        best = max(best, count)
    return best


@pytest.mark.parametrize("speed, steps", [("1.25x", 25), ("1.5x", 25), ("1.75x", 25), ("1.75x", 30), ("2x", 25), ("2x", 50),
                                         ("2.5x", 50), ("3x", 50)])
def test_a_speed_spreads_the_skips_and_meets_its_budget(speed, steps):
    d = [0.0] + [10.0 - 0.1 * k for k in range(1, steps)]
    config = AdaptiveConfig(threshold=0.01, speed=speed, keep_last_steps=1, error_tolerance=100.0)  # the plan alone
    masks, _ = replay([d], config)
    slots = steps - 1 - 4
    wanted = math.ceil(steps * (1 - 1 / config.speed_factor) - 1e-9)
    shortest = next(m for m in range(1, 5) if most_skips(slots, m) >= wanted)
    assert longest_run(masks[0]) == shortest  # the shortest runs that reach the budget
    assert masks[0][:4] == [False] * 4 and masks[0][-1] is False
    assert sum(masks[0]) == wanted  # at least the asked speed, within one call
    assert steps / config.speed_factor - 1 < steps - sum(masks[0]) <= steps / config.speed_factor


def test_the_speed_ignores_the_scale_of_d_and_delta():
    # δ alone skips everything on one scale of second differences and nothing on another;
    # a speed skips the same steps whatever the scale (and whatever δ > 0).
    rng = random.Random(3)
    d = wobbly_d(rng, 30, wobble=0.2)
    by_scale = [replay([[v * scale for v in d]], AdaptiveConfig(threshold=delta, speed="2x"))[0][0]
                for scale, delta in ((1e-3, 0.01), (1.0, 0.5), (1e3, 0.01))]
    assert by_scale[0] == by_scale[1] == by_scale[2] and sum(by_scale[0]) >= 14


def total_cost(costs: list[float], mask) -> float:
    run = total = 0
    for cost, skip in zip(costs, mask):
        run = run + 1 if skip else 0
        total += cost * run ** RUN_GROWTH if skip else 0.0
    return total


@pytest.mark.parametrize("seed", range(40))
def test_the_plan_is_the_cheapest_mask_with_its_skips_and_runs(seed):
    rng = random.Random(seed)
    costs = [rng.random() for _ in range(rng.randint(1, 11))]
    count, in_a_row = rng.randint(0, len(costs)), rng.randint(1, 3)
    feasible = [m for m in itertools.product([False, True], repeat=len(costs))
                if sum(m) == count and longest_run(list(m)) <= in_a_row]
    plan = plan_skips(costs, count, in_a_row)
    if not feasible:
        assert sum(plan) == count  # spread evenly: nothing else meets the count
        return
    assert sum(plan) == count and longest_run(plan) <= in_a_row
    assert total_cost(costs, plan) == pytest.approx(min(total_cost(costs, m) for m in feasible))


def test_the_plan_skips_where_the_schedule_makes_skips_cheap():
    # Two cheap stretches and an expensive middle: the skips go to the cheap ones.
    costs = [1.0] * 6 + [100.0] * 6 + [1.0] * 6
    plan = plan_skips(costs, 6, 1)
    assert not any(plan[6:12]) and sum(plan) == 6 and longest_run(plan) == 1


def test_the_skip_cost_follows_the_schedule():
    # Normal-like schedule (large last step to 0): the step before it is the dearest to skip;
    # karras-like (tiny σ at the end): the last steps are the cheapest (but the one the last
    # step cannot correct).
    normal = [14.6 * (1 - i / 25) ** 2 + 0.03 for i in range(25)] + [0.0]
    costs = [skip_cost(normal, k) for k in range(4, 24)]
    assert costs.index(max(costs)) == len(costs) - 1
    karras = [(14.6 ** (1 / 7) + i / 24 * (0.03 ** (1 / 7) - 14.6 ** (1 / 7))) ** 7 for i in range(25)] + [0.0]
    costs = [skip_cost(karras, k) for k in range(4, 24)]
    assert costs[-2] == min(costs[-3:]) and costs[-2] < costs[len(costs) // 2]
    # reach |(2 - 3)(2 - 4)| / 2² = 0.5, step |2 - 1| = 1, damping 1 / √(1 + 2²)
    assert skip_cost([4.0, 3.0, 2.0, 1.0], 2) == pytest.approx(0.5 / math.sqrt(5.0))
    assert skip_cost([3.0, 2.0, 1.0, 0.0, 0.0], 3) == math.inf  # σ = 0: no noise to extrapolate


def test_a_skip_just_before_the_last_step_costs_more_and_the_plan_keeps_it_computed():
    # The correction fixes a skip through the computed step after it, but the last step's x̂0 is
    # the image: a skip just before it stays uncorrected. Normal-like end: σ 0.26 -> 0.03 -> 0.
    sigmas = [14.6 * 0.84 ** i for i in range(24)] + [0.03, 0.0]
    followed = sigmas[:25] + [0.02, 0.0]  # the same step with a step to correct it after it
    assert skip_cost(sigmas, 23) == pytest.approx(UNCORRECTED * skip_cost(followed, 23))
    assert skip_cost(sigmas, 22) == skip_cost(followed, 22)
    plan = speed_plan(2.0, sigmas, first=4, end=24, max_skip_steps=4)
    assert sum(plan) == 13 and not plan[23] and longest_run(plan) == 2
    # There step 23 is also a long step, which the plan leaves out on its own (cheapest_skips); on an
    # end even in log σ only the weight keeps it computed (at weight 1 this plan skips it).
    even_end = [14.6 * 0.84 ** i for i in range(25)] + [0.0]
    assert not speed_plan(1.5, even_end, first=4, end=24, max_skip_steps=4)[23]


def test_a_long_step_after_short_ones_marks_the_steps_whose_values_it_reuses():
    # Normal-like end: step 23 (σ 0.26 -> 0.03) is ~12x longer in log σ than step 22; a sampler that
    # steps with past values carries steps 20-22's into it. The last step (to σ = 0) is no such step.
    sigmas = [14.6 * 0.84 ** i for i in range(24)] + [0.03, 0.0]
    assert [j for j in range(25) if long_step(sigmas, j)] == [23]
    assert [k for k in range(25) if reused_by_long_step(sigmas, k)] == [20, 21, 22]
    # Karras-like (even in log σ to the end) and UniPC's schedule (ComfyUI drops the penultimate σ)
    karras = [(14.6 ** (1 / 7) + i / 24 * (0.03 ** (1 / 7) - 14.6 ** (1 / 7))) ** 7 for i in range(25)] + [0.0]
    assert not any(long_step(karras, j) for j in range(25))
    assert not any(long_step(sigmas[:24] + [0.0], j) for j in range(24))
    assert long_step([4.0, 2.0, 1.0, 0.25, 0.0], 2) and not long_step([4.0, 2.0, 1.0, 0.26, 0.0], 2)


def test_the_plan_never_skips_a_long_step_into_the_last_one():
    # Normal-like end at 30 steps: step 28 (σ 0.11 -> 0.03) is the long step, then the last to σ = 0.
    # At 1.75x, 13 skips fill the 25 steps 4-28 only as every other step, which skipped step 28:
    # the plan now leaves it out and places the 13 in steps 4-27, in runs of at most 2.
    sigmas = [14.6 * 0.84 ** i for i in range(29)] + [0.03, 0.0]
    assert long_step(sigmas, 28)
    plan = speed_plan(1.75, sigmas, first=4, end=29, max_skip_steps=4)
    assert not plan[28] and sum(plan) == 13 and longest_run(plan) == 2 and not any(plan[:4] + plan[29:])
    # Where it is no long step (karras-like, even in log σ) the plan may still take that step.
    karras = [(14.6 ** (1 / 7) + i / 29 * (0.03 ** (1 / 7) - 14.6 ** (1 / 7))) ** 7 for i in range(30)] + [0.0]
    assert speed_plan(1.75, karras, first=4, end=29, max_skip_steps=4)[28]


def test_a_flow_plan_lengthens_its_runs_where_the_shortest_leave_no_choice():
    # the flow model's simple schedule (shift 3) at 20 steps: 10 skips in steps 4-18 fit runs of 2
    # in exactly one pattern, which skips the steps the costs rank dearest too
    sigmas = [3.0 * t / (1.0 + 2.0 * t) for t in (1.0 - i / 20 for i in range(20))] + [0.0]
    forced = speed_plan(2.0, sigmas, first=4, end=19, max_skip_steps=4)
    assert forced == [False] * 4 + [True, True, False] * 5 + [False]
    chosen = speed_plan(2.0, sigmas, first=4, end=19, max_skip_steps=4, longer_runs_when_tight=True)
    assert sum(chosen) == 10 and longest_run(chosen) == 3 and chosen != forced and not any(chosen[:4] + chosen[19:])
    loose = [3.0 * t / (1.0 + 2.0 * t) for t in (1.0 - i / 25 for i in range(25))] + [0.0]
    assert speed_plan(2.0, loose, 4, 24, 4, longer_runs_when_tight=True) == speed_plan(2.0, loose, 4, 24, 4)
    assert speed_plan(2.0, sigmas, 4, 19, 2, longer_runs_when_tight=True) == forced  # never beyond Cmax


def test_asking_for_more_than_2x_accepts_a_larger_error():
    sigmas = [1.0 - i / 20 for i in range(20)] + [0.0]

    def bound(speed: str) -> float:
        return AdaptiveRun(AdaptiveConfig(threshold=0.01, speed=speed, error_tolerance=0.1), sigmas).decisions.outcome(None).error_tolerance
    assert bound("1.5x") == bound("2x") == pytest.approx(0.1)
    assert bound("2.5x") == pytest.approx(0.1 * 1.25 ** 4) and bound("3x") == pytest.approx(0.1 * 1.5 ** 4)


def test_the_speed_plan_respects_warmup_tail_and_the_users_cmax():
    sigmas = [10.0 * 0.9 ** i for i in range(40)] + [0.0]
    plan = speed_plan(3.0, sigmas, first=6, end=37, max_skip_steps=2)
    assert not any(plan[:6]) and not any(plan[37:]) and len(plan) == 40
    assert longest_run(plan) <= 2 and sum(plan) == most_skips(31, 2)  # Cmax caps the budget
    assert even_spread(10, 4) == [False, False, True, False, True, False, False, True, False, True]
    assert sum(plan_skips([1.0] * 1500, 700, 2)) == 700  # too long to plan: spread evenly
    assert speed_plan(2.0, [5.0, 4.0, 3.0, 2.0, 1.0, 0.0], first=4, end=3, max_skip_steps=4) == [False] * 5


def points_of(eps_of_sigma, sigmas: list[float]) -> list[NoisePoint]:
    base = torch.linspace(-1.0, 2.0, 12).reshape(1, 3, 2, 2)
    return [NoisePoint(row_sigma(torch.tensor([s]), base), eps_of_sigma(s) * base, i) for i, s in enumerate(sigmas)]


def test_the_error_estimate_is_zero_for_noise_linear_in_sigma():
    points = points_of(lambda s: 0.7 + 0.2 * s, [8.0, 6.0, 5.0])
    assert prediction_gap(points, 4.0).item() == pytest.approx(0.0, abs=1e-6)


def test_the_error_estimate_is_the_quadratic_term_for_noise_quadratic_in_sigma():
    # ε = a σ² · base: quadratic − linear prediction = a (σ − σ1)(σ − σ0) · base exactly.
    points = points_of(lambda s: 0.5 * s * s, [8.0, 6.0, 5.0])
    expected = abs((4.0 - 5.0) * (4.0 - 6.0)) / 5.0 ** 2  # relative to |ε1| = 0.5 · 25 · |base|
    assert prediction_gap(points, 4.0).item() == pytest.approx(expected, rel=1e-5)
    assert prediction_gap(points[:2], 4.0).item() == 0.0  # two points: no estimate


def run_euler(config: AdaptiveConfig, eps_of_sigma, steps: int = 24) -> list[bool]:
    sigmas = torch.linspace(10.0, 0.5, steps).tolist() + [0.0]
    run = AdaptiveRun(config, sigmas)
    x = torch.ones(1, 2, 4, 4) * sigmas[0]
    base = torch.linspace(-1, 1, 32).reshape(1, 2, 4, 4)
    for i in range(steps):
        run.begin_evaluation(x)
        denoised = run.model_call(lambda: x - sigmas[i] * eps_of_sigma(sigmas[i]) * base, x,
                                  torch.full((1,), sigmas[i]), [("cond", None)])
        run.on_step(i)
        x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    return [not c for c in run.finish().rows[0]]


def test_the_error_tolerance_refuses_skips_whose_predicted_error_is_too_large():
    curved = lambda s: 1.0 + 0.05 * s * s  # noqa: E731
    straight = lambda s: 1.0 + 0.05 * s  # noqa: E731
    strict = dict(threshold=0.01, speed="2x", noise_reuse="quadratic", error_tolerance=1e-3)
    assert not any(run_euler(AdaptiveConfig(**strict), curved))
    assert sum(run_euler(AdaptiveConfig(**strict), straight)) >= 8  # gap 0: the budget alone decides
    assert sum(run_euler(AdaptiveConfig(**{**strict, "error_tolerance": 1.0}), curved)) >= 8


class SyncCounter:
    """Counts the tensor-to-host conversions made while the decision code runs."""

    METHODS = ("tolist", "item", "__bool__", "__float__", "__int__")

    def __init__(self, monkeypatch):
        self.count = 0
        self.active = False
        for name in self.METHODS:
            original = getattr(torch.Tensor, name)

            def counted(tensor, *args, _original=original, **kwargs):
                self.count += self.active
                return _original(tensor, *args, **kwargs)
            monkeypatch.setattr(torch.Tensor, name, counted)


@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("speed", ["threshold (δ)", "2x"])
def test_the_decision_costs_at_most_one_host_sync_per_step(monkeypatch, per_sample, speed):
    rng = random.Random(1)
    d_rows = [wobbly_d(rng, 40, wobble=0.05) for _ in range(5)]
    counter = SyncCounter(monkeypatch)
    original = DecisionState.start_step
    syncs: list[int] = []

    def start_step(decisions, k, x, decide):
        before = counter.count
        counter.active = True
        try:
            original(decisions, k, x, decide)
        finally:
            counter.active = False
        syncs.append(counter.count - before)
    monkeypatch.setattr(DecisionState, "start_step", start_step)
    masks, _ = replay(d_rows, AdaptiveConfig(threshold=0.02, speed=speed, per_sample=per_sample,
                                             noise_reuse="quadratic"))
    assert any(any(mask) for mask in masks)
    assert max(syncs) <= 1 and sum(syncs) <= 40


def run_with_fresh_noise(config: AdaptiveConfig, fresh: bool, steps: int = 20) -> tuple[list[bool], list[str]]:
    """A model that always answers the same x̂0; the latent is x̂0 + σ·noise, with the same noise
    every step (an ODE path: the implied ε never changes) or fresh noise each step (what an
    ancestral/SDE sampler feeds the model)."""
    generator = torch.Generator().manual_seed(0)
    sigmas = torch.linspace(10.0, 0.5, steps).tolist() + [0.0]
    x0 = torch.randn(1, 2, 4, 4, generator=generator)
    noise = torch.randn(1, 2, 4, 4, generator=generator)
    run = AdaptiveRun(config, sigmas)
    for k in range(steps):
        if fresh:
            noise = torch.randn(1, 2, 4, 4, generator=generator)
        x = x0 + sigmas[k] * noise
        run.begin_evaluation(x)
        run.model_call(lambda: x0.clone(), x, torch.full((1,), sigmas[k]), [("cond", None)])
        run.on_step(k)
    trace = run.finish()
    return [not c for c in trace.rows[0]], trace.notes


def test_a_stochastic_sampler_gets_its_planned_skips_refused_and_a_note():
    config = AdaptiveConfig(threshold=0.01, speed="2x", noise_reuse="quadratic")
    smooth, notes = run_with_fresh_noise(config, fresh=False)
    assert sum(smooth) == 10 and not notes  # 20 steps at 2x: every planned skip taken
    fresh, notes = run_with_fresh_noise(config, fresh=True)
    assert not any(fresh)  # the same plan, every skip refused: the picture is KSampler's
    # every skip refused, and the ones moved to later steps refused again
    assert len(notes) == 1 and int(notes[0].split()[0]) >= 10 and "planned skips refused" in notes[0], notes
    assert "above the tolerance (0.1" in notes[0]


def test_the_reuse_plan_spends_reuses_first_and_skips_whole_steps_only_beyond_them():
    sigmas = [14.6 * (1 - i / 25) ** 3 for i in range(25)] + [0.0]
    for factor, saved in ((1.5, 17), (2.0, 25), (2.5, 30)):
        whole, reuse = reuse_plan(factor, sigmas, first=4, end=23, max_skip_steps=4, period=2)
        assert not any(w and r for w, r in zip(whole, reuse))
        assert not any(whole[:4] + reuse[:4] + whole[23:] + reuse[23:])
        assert sum(reuse) + 2 * sum(whole) >= math.ceil(50 * (1 - 1 / factor) - 1e-9)
        assert sum(whole) == 0 if saved <= 19 else sum(whole) > 0
    whole, reuse = reuse_plan(2.0, sigmas, first=4, end=23, max_skip_steps=4, period=2)
    assert whole == cheapest_skips(sum(whole), sigmas, 4, 23, 4)  # where whole skips cost least
