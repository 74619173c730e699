"""adaptive_core without ComfyUI: the criterion, the config and the step clock."""
from __future__ import annotations

import pytest

from adaptive_core import AdaptiveConfig, StepClock, config_problem, criterion_value, should_skip


def linear_d(n: int) -> list[float | None]:
    """Differences that change exactly linearly: the criterion is 0 at every step."""
    return [None] + [10.0 - 0.5 * k for k in range(1, n)]


def decide_all(d, config, total=None):
    """Run the decisions in order, as a sampler would, tracking skips in a row."""
    total = total or len(d)
    in_a_row, mask = 0, []
    for k in range(total):
        skip = should_skip(d, k, total, in_a_row, config)
        in_a_row = in_a_row + 1 if skip else 0
        mask.append(skip)
    return mask


def test_warmup_steps_are_always_computed():
    mask = decide_all(linear_d(12), AdaptiveConfig(threshold=0.1, warmup_steps=5, keep_last_steps=0))
    assert mask[:5] == [False] * 5
    assert mask[5] is True


def test_cmax_holds_from_the_first_run_of_skips():
    # The reference code allows 5 skips in its first run whatever Cmax is; we do not.
    mask = decide_all(linear_d(20), AdaptiveConfig(threshold=0.1, max_skip_steps=2, keep_last_steps=0))
    assert mask[:4] == [False] * 4
    assert mask[4:13] == [True, True, False, True, True, False, True, True, False]


def test_keep_last_steps_computes_the_final_steps():
    d = linear_d(12)
    mask = decide_all(d, AdaptiveConfig(threshold=0.1, max_skip_steps=100, keep_last_steps=3))
    assert mask[-3:] == [False] * 3 and mask[-4] is True
    paper = decide_all(d, AdaptiveConfig(threshold=0.1, max_skip_steps=100, keep_last_steps=0))
    assert paper[-1] is True


def test_threshold_zero_switches_skipping_off_even_for_a_perfectly_linear_path():
    d = [None] + [1.0] * 15  # second difference exactly 0: <= 0 would still hold
    assert not any(decide_all(d, AdaptiveConfig(threshold=0.0, keep_last_steps=0)))


def test_exact_boundary_of_the_inequality():
    # |d_k - 2d_(k-1) + d_(k-2)| = 2δ·d_(k-1) exactly (values exact in binary): skip.
    d = [None, 1.0, 2.0, 4.0, 4.0 + 2.0 + 0.25]  # second difference at k=4: 0.25 = 2·δ·4 with δ=1/32
    config = AdaptiveConfig(threshold=1 / 32, keep_last_steps=0)
    assert should_skip(d, 4, 10, 0, config)
    assert criterion_value(d, 4) == pytest.approx(1 / 32)
    d[4] += 2.0 ** -20  # just over the line
    assert not should_skip(d, 4, 10, 0, config)


def test_criterion_value_is_none_without_three_differences():
    assert criterion_value([None, 1.0, 2.0], 2) is None
    assert criterion_value([None, 1.0, None, 2.0], 3) is None
    assert criterion_value([None, 1.0, 0.0, 1.0], 3) == float("inf")


@pytest.mark.parametrize("field,value,needle", [
    ("threshold", -0.1, "threshold"), ("max_skip_steps", 0, "max_skip_steps"),
    ("warmup_steps", 2, "warmup_steps"), ("keep_last_steps", -1, "keep_last_steps"),
    ("noise_reuse", "cubic", "noise_reuse"), ("threshold", float("nan"), "threshold"),
    ("max_skip_steps", 2.5, "max_skip_steps"),
])
def test_bad_config_names_the_input(field, value, needle):
    with pytest.raises(ValueError, match=needle):
        AdaptiveConfig(**{field: value})


def test_steps_below_warmup_is_no_input_error():
    # A few-step Turbo/LCM graph is a valid KSampler graph: it runs unskipped (see AdaptiveRun).
    assert config_problem(steps=2, warmup_steps=4) is None


def drive(clock: StepClock, pattern: str) -> list[tuple[int, int, bool]]:
    """Feed 'e' (evaluation) and digits (callback for that step) to the clock."""
    seen = []
    for token in pattern.split():
        if token == "e":
            p = clock.next_evaluation()
            seen.append((p.step, p.slot, p.predicted_start))
        else:
            clock.on_callback(int(token))
    return seen


def test_clock_predicts_step_starts_for_one_evaluation_per_step():
    clock = StepClock()
    drive(clock, "e 0 e 1 e 2")
    assert clock.period == 1
    assert drive(clock, "e") == [(3, 0, True)]


def test_clock_handles_heun_where_two_evaluations_share_a_sigma():
    clock = StepClock()
    drive(clock, "e 0 e e 1 e e 2")
    assert clock.period == 2
    assert drive(clock, "e e") == [(2, 1, False), (3, 0, True)]  # heun's 2nd call, then step 3
    assert [(p.step, p.slot) for p in clock.positions[:3]] == [(0, 0), (0, 1), (1, 0)]


def test_clock_learns_a_period_that_settles_late_and_flags_a_broken_rhythm():
    clock = StepClock()
    drive(clock, "e 0 e 1 e e 2 e e 3")  # sa_solver_pece: intervals 1, 2, 2
    assert clock.period == 2 and not clock.broken
    drive(clock, "e e e 4")  # 3 evaluations where 2 were predicted
    assert clock.broken


def test_a_second_stages_clock_trusts_one_interval_of_one_call_only_when_told():
    quick = StepClock(quick_start=True)  # a node starting mid-schedule, its sampler known to call once a step
    drive(quick, "e 0 e 1")
    assert quick.period == 1 and drive(quick, "e") == [(2, 0, True)]
    assert StepClock(quick_start=True).period is None
    heun = StepClock(quick_start=True)
    drive(heun, "e 0 e e 1")
    assert heun.period is None  # only an interval of one call is trusted
    plain = StepClock()
    drive(plain, "e 0 e 1")
    assert plain.period is None  # two equal intervals first


def test_only_a_second_stage_of_a_sampler_known_to_call_once_a_step_starts_its_clock_quickly():
    from adaptive_core import AdaptiveRun
    from adaptive_core.decision import ScheduleStage
    sigmas = [1.0 - i / 20 for i in range(20)] + [0.0]
    config = AdaptiveConfig(threshold=0.01, speed="2x")

    def quick(start: int, sampler: str) -> bool:
        run = AdaptiveRun(config, sigmas[start:], stage=ScheduleStage(tuple(sigmas), start, 20 - start))
        run.sampler_started(sampler)
        return run.clock.quick_start
    assert quick(10, "sample_euler") and quick(10, "sample_unipc")
    # sa_solver_pece calls once in its first step, twice later: its first interval is no period
    assert not quick(10, "sample_sa_solver_pece") and not quick(10, "sample_heun")
    assert not quick(0, "sample_euler")  # from the schedule's start: the warm-up has its callbacks


def test_clock_protects_two_final_steps_for_multi_evaluation_samplers():
    clock = StepClock()
    drive(clock, "e 0 e e 1 e e 2")
    assert clock.protected_tail(0) == 2 and clock.protected_tail(3) == 3
    single = StepClock()
    drive(single, "e 0 e 1 e 2")
    assert single.protected_tail(0) == 0
