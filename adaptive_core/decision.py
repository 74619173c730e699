"""The skip decision: which steps a run skips. Host-free; tensors stay on the latent's device.

Two modes:

* threshold (δ), the paper: from d, the history of latent differences [k + 1, rows]
  (d_j = mean |x_j - x_(j-1)|), skip step k iff |d_k - 2 d_(k-1) + d_(k-2)| <= 2 δ d_(k-1) and fewer
  than Cmax steps were skipped in a row (exactly `criterion.should_skip`, for every row at once).
* a speed ("2x" fewer model calls, ...): a plan made from the σ schedule before the first skip.
  `skip_cost` estimates what skipping one step costs the final image; `plan_skips` picks the
  cheapest set of steps that meets the budget, in runs no longer than the budget needs. Measured
  on the reference model (bench/studies/placement.py), this cost ranks the steps by their real damage far
  better than the third-order criterion or the error estimate ranked within the run, and the plan
  beats the run-relative ranking it replaced by 3.6-5.2 dB on average at equal calls, up to 16 dB
  (bench/studies/compare_runs.py). The run still watches
  itself: a planned skip whose embedded error estimate (the gap between the quadratic and linear
  noise predictions at the step's σ, relative to |ε|) exceeds the tolerance is refused.
  A sampler that steps with past values (what the correction found) computes the planned skips
  a much longer step would reuse (`reused_by_long_step`).
  Samplers with 2+ calls a step (heun, dpm_2) first spend the budget on `reuse_plan`'s reuses:
  a step's first call answered from the previous step's later call, one call saved each.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch


RUN_GROWTH = 3.0  # the r-th skip in a row extrapolates r steps ahead: it costs r**3 times its own
# What a skip the next step cannot correct costs against one it can. On the normal schedule the
# step before the last jumps far (σ 0.2 -> 0.03 at 25 steps): at 2x the plan skipped it, left
# uncorrected, until this weight (bench/peers.py before/after in docs/speed_control.md); 4 was
# the best of 1, 2, 4, 16 tried on a few settings in development runs (not a kept command).
UNCORRECTED = 4.0
# A step this many times longer in log σ than the step before it (the normal schedule's last step
# to σ > 0: 0.139 -> 0.029 after steps of ~0.05 at 50 steps) extrapolates the sampler's past values
# far: DPM++ 2M weighs its previous x̂0 by 1/(2r), LMS, iPNDM and DEIS their last noises by large
# variable-step weights. A skipped value stays in that memory, where the correction does not reach
# (it corrects the latent), so a run whose sampler steps with past values computes the
# HISTORY_REACH steps before such a step (AdaptiveRun; moving those skips elsewhere in the plan
# lengthened its runs and measured worse at 25 and 50 steps).
LONG_STEP = 2.0
HISTORY_REACH = 3
PLAN_LIMIT = 1000  # longer windows get evenly spread skips (the plan is O(steps x skips))


def skip_cost(sigmas: Sequence[float], k: int) -> float:
    """What skipping step k alone costs the final image, up to a constant, from the schedule.

    The skipped noise is extrapolated from the computed steps before it: its error grows like
    the extrapolation's next term, |(σ_k - σ_(k-1))(σ_k - σ_(k-2))| times the curvature of ε,
    which varies on the scale of log σ (so ~1/σ_k²). The sampler moves x by |σ_(k+1) - σ_k|
    times ε, and an error made at noise level σ reaches the end damped by about 1/√(1 + σ²)
    (unit-scale latents): what a model will forget anyway costs little. A skip just before the
    last step costs UNCORRECTED times that: the computed step after a skip corrects it
    (correction.py), except the last, whose x̂0 is the image.
    """
    s, s1, s0, following = sigmas[k], sigmas[k - 1], sigmas[k - 2], sigmas[k + 1]
    if s <= 0:
        return math.inf
    reach = abs((s - s1) * (s - s0)) / (s * s)
    uncorrected = UNCORRECTED if k + 2 < len(sigmas) and sigmas[k + 2] <= 0 else 1.0
    return uncorrected * reach * abs(s - following) / math.sqrt(1.0 + s * s)


def most_skips(slots: int, in_a_row: int) -> int:
    """The most steps that `slots` consecutive steps can skip with at most `in_a_row` in a row."""
    return slots - slots // (in_a_row + 1)


def plan_skips(costs: Sequence[float], count: int, in_a_row: int) -> list[bool]:
    """`count` skips among consecutive steps of these `costs`, at most `in_a_row` in a row, with
    the least total cost (a run's r-th skip costs r**RUN_GROWTH times its own). Dynamic
    programming over (skips so far, current run): value[run][used] after each step."""
    if count <= 0 or len(costs) > PLAN_LIMIT:
        return even_spread(len(costs), count)
    inf = math.inf
    value = [[0.0] + [inf] * count] + [[inf] * (count + 1) for _ in range(in_a_row)]
    came_from_run: list[list[int]] = []  # per step, per skips so far: the run a computed step ended
    for cost in costs:
        ended = [min(range(in_a_row + 1), key=lambda r: value[r][used]) for used in range(count + 1)]
        came_from_run.append(ended)
        value = [[value[ended[used]][used] for used in range(count + 1)]] + [
            [inf] + [value[r - 1][used - 1] + cost * r ** RUN_GROWTH for used in range(1, count + 1)]
            for r in range(1, in_a_row + 1)]
    run = min(range(in_a_row + 1), key=lambda r: value[r][count])
    if value[run][count] == inf:
        return even_spread(len(costs), count)
    mask, used = [], count
    for step in reversed(range(len(costs))):
        mask.append(run > 0)
        if run > 0:
            run, used = run - 1, used - 1
        else:
            run = came_from_run[step][used]
    return mask[::-1]


def even_spread(slots: int, count: int) -> list[bool]:
    """`count` skips spread evenly over `slots` steps (schedules too long to plan step by step)."""
    count = max(0, min(count, slots))
    return [math.floor((i + 1) * count / slots) > math.floor(i * count / slots) for i in range(slots)]


def skip_budget(factor: float, steps: int) -> int:
    """The skips that make `steps` steps about `factor` times fewer model calls."""
    return math.ceil(steps * (1.0 - 1.0 / factor) - 1e-9)


def speed_plan(factor: float, sigmas: Sequence[float], first: int, end: int, max_skip_steps: int,
               longer_runs_when_tight: bool = False) -> list[bool]:
    """The skip mask for about `factor` times fewer calls over the schedule `sigmas` (len steps + 1):
    skips only in steps first..end-1 (after the warm-up, before the kept last steps), in the
    shortest runs that reach the budget (never beyond the user's Cmax, which caps the budget)."""
    return cheapest_skips(skip_budget(factor, len(sigmas) - 1), sigmas, first, end, max_skip_steps,
                          longer_runs_when_tight=longer_runs_when_tight)


def long_step(sigmas: Sequence[float], j: int) -> bool:
    """Step j (σ_j -> σ_(j+1) > 0) is LONG_STEP times longer in log σ than step j-1 or more."""
    if j < 1 or j + 1 >= len(sigmas) or not sigmas[j - 1] > sigmas[j] > sigmas[j + 1] > 0:
        return False
    return math.log(sigmas[j] / sigmas[j + 1]) >= LONG_STEP * math.log(sigmas[j - 1] / sigmas[j])


def reused_by_long_step(sigmas: Sequence[float], k: int) -> bool:
    """A long step comes within HISTORY_REACH steps after step k: a sampler that steps with its past
    values carries k's into it."""
    return any(long_step(sigmas, j) for j in range(k + 1, k + 1 + HISTORY_REACH))


def cheapest_skips(wanted: int, sigmas: Sequence[float], first: int, end: int, max_skip_steps: int,
                   blocked: frozenset[int] = frozenset(), longer_runs_when_tight: bool = False) -> list[bool]:
    """`wanted` skipped steps between first and end-1 where `skip_cost` is least, in the shortest
    runs that hold them (at most max_skip_steps in a row, which caps the count); end-1 is left out
    when it is a long step, and so are the `blocked` steps.

    longer_runs_when_tight: where the shortest runs hold exactly `wanted` (one pattern, no choice
    of where), allow runs one step longer so the costs choose. For flow models (linear velocity):
    on bench/flow_graphs.py at 2x it lifted the 20-step rows by +2.6 to +6.9 dB (uni_pc cfg 3:
    -1.4) and gave two-stage 20-step graphs their 10th skip; at 2.5x, 20 and 25 steps, +5.8 to
    +7 dB. On the ε model (a development run of bench/peers.py, not kept) it changed 4 of 96 cells
    (2.5x: +1.7, +1.0, +0.8 and -3.8 dB at 50 steps dpmpp_2m / normal), so ε plans keep the
    shortest runs."""
    steps = len(sigmas) - 1
    end = max(end, first)
    if end - 1 > first and long_step(sigmas, end - 1):
        # The window's last step, when long (the normal schedule's last step to σ > 0 with the last
        # step kept), is never planned: its skip goes uncorrected into the final x̂0, and where the
        # budget left the plan no choice (30 steps at 1.75x: every other step) it took it. Measured
        # with bench/peers.py on the normal rows it moves (docs/speed_control.md).
        end -= 1
    free = [k not in blocked for k in range(first, end)]
    in_a_row = next((m for m in range(1, max_skip_steps + 1) if room(free, m) >= wanted), max_skip_steps)
    if longer_runs_when_tight and in_a_row < max_skip_steps and room(free, in_a_row) == wanted:
        in_a_row += 1
    count = min(wanted, room(free, in_a_row))
    costs = [skip_cost(sigmas, k) if open_ else math.inf for k, open_ in zip(range(first, end), free)]
    window = plan_skips(costs, count, in_a_row)
    return [False] * first + window + [False] * (steps - end)


def room(free: Sequence[bool], in_a_row: int) -> int:
    """The most skips the free steps hold with at most `in_a_row` in a row (blocked steps split runs)."""
    total, run = 0, 0
    for open_ in list(free) + [False]:
        if open_:
            run += 1
        else:
            total, run = total + most_skips(run, in_a_row), 0
    return total


# A node that starts mid-schedule computes its new model's first steps: as many as its
# extrapolation needs points (noise_cache.POINTS_NEEDED: quadratic 3; linear 2, what flow models
# and fresh-noise samplers use). SWITCH_WARMUP is the quadratic's, the default.
SWITCH_WARMUP = 3


@dataclass(frozen=True)
class ScheduleStage:
    """A sampler node's share of a schedule that two nodes sample in turn (KSampler (Advanced)
    with start/end steps: Wan 2.2's high- and low-noise experts, SDXL base then refiner).

    Both nodes plan the whole schedule the same way and each takes its own steps, so the asked
    speed holds over the whole. A skip never draws on the other node's calls: the steps a node
    starts with are computed until its own model's predictor has its points (`switch_warmup`).
    The steps a node ends with may be skipped (keep_last_steps keeps the schedule's end): no
    computed step of its own corrects them, yet on bench/flow_graphs.py's two-stage rows keeping
    them cost 2-6 dB at 20 steps and one call (ε base → refiner at 50 steps: +1.8 / -0.8 dB)."""
    sigmas: tuple[float, ...]  # the whole schedule, len steps + 1
    start: int                 # this node's first step in it
    steps: int                 # how many steps this node samples

    @property
    def end(self) -> int:
        return self.start + self.steps

    @property
    def total_steps(self) -> int:
        return len(self.sigmas) - 1

    def blocked(self, switch_warmup: int = SWITCH_WARMUP) -> frozenset[int]:
        """The steps after each switch between the nodes that are always computed."""
        steps: set[int] = set()
        for switch in (self.start, self.end):
            if 0 < switch < self.total_steps:
                steps.update(range(switch, switch + switch_warmup))
        return frozenset(steps)

    def whole_plan(self, factor: float, warmup: int, keep_last: int, max_skip_steps: int,
                   switch_warmup: int = SWITCH_WARMUP, longer_runs_when_tight: bool = False) -> list[bool]:
        """The whole schedule's plan, the same in both nodes; each samples its [start, end)."""
        return cheapest_skips(skip_budget(factor, self.total_steps), self.sigmas, warmup,
                              self.total_steps - keep_last, max_skip_steps, self.blocked(switch_warmup),
                              longer_runs_when_tight)


def reuse_plan(factor: float, sigmas: Sequence[float], first: int, end: int, max_skip_steps: int,
               period: int) -> tuple[list[bool], list[bool]]:
    """(skipped steps, steps whose first call is reused) for a sampler that calls the model
    `period` times a step: the first call of step k is answered from a later call of step k-1
    (heun's is at σ_k itself, a corrector away; dpm_2's midpoint is extrapolated), which costs far
    less than a skipped step (bench/studies/heun_reuse.py). Such reuses save one call of `period` each and
    come first; whole steps are skipped (from `cheapest_skips`) only where the budget needs more."""
    steps = len(sigmas) - 1
    wanted = math.ceil(steps * period * (1.0 - 1.0 / factor) - 1e-9)  # calls to save
    slots = max(end - first, 0)
    whole = cheapest_skips(math.ceil(max(wanted - slots, 0) / max(period - 1, 1)), sigmas, first, end,
                           max_skip_steps)
    chosen = [True] * slots if wanted > slots else even_spread(slots, wanted)
    reuse = [False] * first + chosen + [False] * (steps - first - slots)
    return whole, [r and not w for r, w in zip(reuse, whole)]


def exact(t: torch.Tensor) -> torch.Tensor:
    """float64 where the device has it, so the criterion rounds as the paper's Python code does."""
    return t if t.device.type == "mps" else t.double()


def second_difference(d: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(|d_k - 2 d_(k-1) + d_(k-2)|, 2 d_(k-1)) per row, the two sides of the criterion."""
    d = exact(d)
    return (d[k] - 2.0 * d[k - 1] + d[k - 2]).abs(), 2.0 * d[k - 1]


def paper_skip(d: torch.Tensor, k: int, delta: float, room: torch.Tensor) -> torch.Tensor:
    """The paper's rule per row; `room`: fewer than Cmax skips in a row before k."""
    change, scale = second_difference(d, k)
    return room & (change <= delta * scale)  # product form: no division by d_(k-1)
