"""What a run's skip decision remembers between steps: the d history, the plan, the refusals.

decision.py holds the rules (pure functions of the schedule and of tensors); this holds one run's
state for them and takes the decision for a step with at most one host read (host_read.py).
Decisions are kept per batch row: with per_sample off (the paper) the rows share one decision
from the whole latent; with it on, each row has its own d_k, criterion, Cmax count and mask.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from .config import AdaptiveConfig
from .correction import SkipCorrection
from .decision import (ScheduleStage, cheapest_skips, paper_skip, reuse_plan, reused_by_long_step, skip_budget,
                       speed_plan)
from .host_read import HostRead
from .noise_cache import POINTS_NEEDED, SAME_SIGMA_RTOL, NoiseCache, Prediction, prediction_gap
from .step_clock import StepClock
from .trace import RunOutcome


# The x̂0 estimate's bound is this many times error_tolerance. Measured with bench/stochastic.py
# (euler_ancestral, er_sde, sa_solver on the ε and flow reference models, 25-30 steps, 2x): at 1x
# most skips were refused (27 of 30 calls); at 3x, 12-15 calls on the ε model, 12-19 on the flow
# model, 3 of 6 rows above no refusals at all (10x and up: no skip refused), 3 below.
DENOISED_TOLERANCE_SCALE = 3.0
# Above 2x the bound grows as (speed / 2) ** this: asking for more than half the calls accepts
# a larger error. At the bound of 2x, 2.5x and 3x gave the flow model no fewer calls than 2x at
# 20-25 steps (refusals took the extra skips back); with it 2.5x gives 8 calls of 20 and 10 of 25,
# 3x 9 of 25 (bench/flow_graphs.py --speeds, in README). On the ε model, where the asked calls held
# before, no ODE cell of bench/peers.py changed; euler_ancestral's 2.5x / 3x cells moved by -3.5 to
# +9.6 dB, one call fewer in some (bench/results/peers_results.csv against 17732de).
FASTER_TOLERANCE_POWER = 4.0


class DecisionState:
    """One run's decisions. The run calls start_step() at each step's first evaluation."""

    def __init__(self, config: AdaptiveConfig, sigmas: Sequence[float], clock: StepClock, cache: NoiseCache,
                 correction: SkipCorrection | None, note: Callable[[str], None],
                 skip_path: Sequence[bool] | None = None, forced_plan: Sequence[bool] | None = None,
                 stage: ScheduleStage | None = None, flow_matching: bool = False):
        """skip_path: follow this mask (True = skip step k), no criterion, no correction.
        forced_plan: with a speed, this mask instead of the planned one (its refusals and the
        correction still act: what a search over masks measures). stage: this run samples part
        of a schedule another node samples the rest of; a speed plans the whole. flow_matching: the
        model predicts a velocity, whose linear extrapolation holds over longer runs (plans may
        lengthen their runs where the shortest leave no choice: decision.cheapest_skips)."""
        self.config, self.sigmas, self.total_steps = config, list(sigmas), len(sigmas) - 1
        self.clock, self.cache, self.correction, self.note = clock, cache, correction, note
        self.skip_path = None if skip_path is None else [bool(s) for s in skip_path]
        self.forced_plan = None if forced_plan is None else [bool(s) for s in forced_plan]
        self.per_sample = config.per_sample and self.skip_path is None
        self.flow_matching = flow_matching
        self.stage = self._checked(stage) if config.speed_factor is not None and skip_path is None else None
        self.reset()

    def _checked(self, stage: ScheduleStage | None) -> ScheduleStage | None:
        """The stage, if this run's σ are its steps of a split schedule (else this run plans alone)."""
        if stage is None or (stage.start == 0 and stage.end >= stage.total_steps):
            return None
        expected = stage.sigmas[stage.start:stage.start + self.total_steps + 1]
        if len(expected) != len(self.sigmas) or any(abs(a - b) > 1e-6 * max(abs(a), 1.0)
                                                     for a, b in zip(expected, self.sigmas)):
            self.note("planned alone: this node's σ are not its steps of the schedule it was given")
            return None
        self.note(f"steps {stage.start}-{stage.end - 1} of a {stage.total_steps}-step schedule another sampler "
                  "node shares: the speed is planned over the whole schedule")
        return stage

    def reset(self) -> None:
        """Back to a run's start: every tensor dropped."""
        self.rows = 0                                      # batch rows, from the first evaluation
        self.d_history: torch.Tensor | None = None          # [steps, rows] d_k per row, on the device
        self.has_d = [False] * self.total_steps             # d_k was measured at step k
        self.step_inputs: dict[int, torch.Tensor] = {}      # the newest step's first input
        self.skip: list[list[bool]] = [[] for _ in range(self.total_steps)]  # per step, per row
        self.in_a_row: list[int] = []
        self.plan: list[bool] | None = None   # a speed's skip mask, made at its first decision
        # Per decision column (each row with per_sample, else one): the plan as refusals moved it.
        self.plans: list[list[bool]] = []
        self.refused = 0                      # planned skips (row-steps) the error estimate refused
        self.replaced = 0                     # of those, given a later step by a new plan
        self.refused_by_column: list[int] = []
        self.kept_for_long_step: set[int] = set()  # planned skips computed: a long step reuses them
        self.past_values: bool | None = None  # the sampler steps with past values (read once)
        # Samplers that call the model 2+ times a step: the slot whose noise answers the next step's
        # first call (heun's at that very σ), and the steps that skip only that first call.
        self.reuse_slot: int | None = None
        self.reuse: list[bool] = []
        self.reused_steps: set[int] = set()
        self.eval_sigmas: dict[int, torch.Tensor] = {}  # σ of each evaluation until the plan is made

    def see_batch(self, rows: int) -> bool:
        """An evaluation's batch size: False when it differs from the run's first."""
        if not self.rows:
            self.rows, self.in_a_row = rows, [0] * rows
        return rows == self.rows

    def note_sigma(self, evaluation: int, sigma: torch.Tensor) -> None:
        """σ of an evaluation's call, kept until a speed's plan is made (the reuse slot needs it)."""
        if self.plan is None and self.config.speed_factor is not None:
            self.eval_sigmas.setdefault(evaluation, sigma.reshape(-1)[:1])

    def first_decision(self) -> int:
        """The first step that may be skipped: after the warm-up, or for a node that starts
        mid-schedule, once its own predictor has its points (`switch_warmup`)."""
        if self.stage is not None and self.stage.start > 0 and self.config.speed_factor is not None:
            return self.switch_warmup
        return max(self.config.warmup_steps, 3)

    @property
    def switch_warmup(self) -> int:
        """Steps a node that starts mid-schedule computes first: the points its extrapolation needs
        (2 for the linear one of flow models and fresh-noise samplers, 3 for the quadratic). The
        first skips after 2 points have no error estimate yet (it compares the linear and quadratic
        answers) and go by the plan alone; measured on the two-stage rows of bench/flow_graphs.py."""
        return max(self.cache.needed, 2)

    def protected_tail(self) -> int:
        """This run's final steps never skipped: keep_last_steps keeps the schedule's end, so a node
        whose stage ends before it keeps only what its sampler's rhythm needs (ScheduleStage)."""
        ends_mid_schedule = self.stage is not None and self.stage.end < self.stage.total_steps
        keep = 0 if self.skip_path is not None or ends_mid_schedule else self.config.keep_last_steps
        return self.clock.protected_tail(keep)

    def row_skipped(self, k: int, row: int) -> bool:
        """The decision (not necessarily what ran: a skip the cache could not answer was computed)."""
        return row < len(self.skip[k]) and self.skip[k][row]

    def skipped_rows(self, step: int, slot: int) -> list[int]:
        """The rows whose call at (step, slot) is to be answered from the cache."""
        reused = slot == 0 and step in self.reused_steps
        return [row for row in range(self.rows) if reused or self.row_skipped(step, row)]

    def start_step(self, k: int, x: torch.Tensor, decide: bool) -> None:
        """Step k's first input: measure d_k and, when `decide`, take step k's decision."""
        previous = self.step_inputs.get(k - 1)
        if self.d_history is None:
            self.d_history = torch.zeros(self.total_steps, x.shape[0], device=x.device)
        if previous is not None and previous.shape == x.shape and x.shape[0] == self.d_history.shape[1]:
            change = (x.float() - previous.float()).abs()
            self.d_history[k] = change.reshape(change.shape[0], -1).mean(dim=1)  # d_k of each row
            self.has_d[k] = True
        self.step_inputs = {k: x}
        skip = self.decide(k) if decide else [False] * self.rows
        self.skip[k] = skip
        self.in_a_row = [count + 1 if s else 0 for count, s in zip(self.in_a_row, skip)]

    def decide(self, k: int) -> list[bool]:
        """Skip step k? One entry per row."""
        tail = self.protected_tail()
        if self.skip_path is not None:  # a replayed path: only the sampler's rhythm limits it
            return [k < len(self.skip_path) and self.skip_path[k] and k < self.total_steps - tail] * self.rows
        if not self.config.enabled or k < self.first_decision() or k >= self.total_steps - tail:
            return [False] * self.rows
        if self.config.speed_factor is None:
            if not all(self.has_d[j] for j in (k, k - 1, k - 2)):  # the paper's rule reads d_k, d_(k-1), d_(k-2)
                return [False] * self.rows
            read = HostRead()
            paper = read.add(self._paper_skip(k))
            skip = read.read()[paper]  # the one host sync of this step
        else:
            skip = self._planned(k, tail)
            if skip is None:
                return [False] * self.rows
        return skip if self.per_sample else skip * self.rows

    def _paper_skip(self, k: int) -> torch.Tensor:
        d = self.d_history[:k + 1] if self.per_sample else self.d_history[:k + 1].mean(1, keepdim=True)
        in_a_row = self.in_a_row if self.per_sample else [max(self.in_a_row)]
        room = torch.tensor([count < self.config.max_skip_steps for count in in_a_row]).to(d.device, non_blocking=True)
        return paper_skip(d, k, self.config.threshold, room)

    def _planned(self, k: int, tail: int) -> list[bool] | None:
        """The plan's skip at k per decision column, refused above the error tolerance; None when
        the step is computed. Reads the device once, only for a planned skip."""
        if self.plan is None:  # made here, once warm-up has shown the sampler's rhythm (its kept tail)
            self._make_plan(tail)
        planned = [plan[k] for plan in self._column_plans()]
        if not (any(planned) or self.reuse[k]):
            return None
        before_long_step = any(planned) and reused_by_long_step(self.sigmas, k)
        if before_long_step and self.past_values:
            self.kept_for_long_step.add(k)
            return None
        read = HostRead()
        allowed = read.add(self._prediction_gaps(k, len(planned)) <= self._tolerance())
        past = None if self.correction is None else self.correction.past_value_rows
        ask_past = before_long_step and self.past_values is None and past is not None
        if ask_past:  # whether the sampler steps with past values: read with this decision, once a run
            asked = read.add((past > 0).reshape(1))
        values = read.read()  # the one host sync of this step
        if ask_past:
            self.past_values = values[asked][0]
            if self.past_values:
                self.kept_for_long_step.add(k)
                return None
        if self.reuse[k]:  # only the first call is skipped, and only if every row allows it
            self.refused += values[allowed].count(False)
            if all(values[allowed]):
                self.reused_steps.add(k)
            return None
        skip = [wanted and ok for wanted, ok in zip(planned, values[allowed])]
        for column, (wanted, ok) in enumerate(zip(planned, values[allowed])):
            if wanted and not ok:
                self.refused += 1
                self.refused_by_column[column] += 1
                self._replace_refused(column, k, tail)
        return skip

    def _tolerance(self) -> float:
        """The error estimate's bound: relative to |ε|, or to |x̂0| when x̂0 is extrapolated (a
        sampler that adds noise every step), which moves more between steps at high noise."""
        scale = DENOISED_TOLERANCE_SCALE if self.cache.prediction is Prediction.DENOISED else 1.0
        faster = max(1.0, (self.config.speed_factor or 1.0) / 2.0) ** FASTER_TOLERANCE_POWER
        return self.config.error_tolerance * scale * faster

    def _column_plans(self) -> list[list[bool]]:
        columns = self.rows if self.per_sample else 1
        if len(self.plans) != columns:  # made, or per-sample decisions were switched off: the batch's plan
            self.plans = [list(self.plans[0] if self.plans else self.plan) for _ in range(columns)]
            self.refused_by_column = [0] * columns
        return self.plans

    def _replace_refused(self, column: int, k: int, tail: int) -> None:
        """Give a refused skip a later step: the column's plan from k+1 on is made anew with one
        skip more, so the asked speed holds where the estimate allows it. Not for a forced plan
        (it is measured as given), nor, for noise predictions, once a column has had half its
        budget refused (the estimate rejects this sampler's noise). x̂0 predictions (fresh-noise
        samplers) keep moving: on flow euler_ancestral 30 steps that gave 17 calls instead of 19,
        the other rows of bench/stochastic.py unchanged."""
        plan, end = self.plans[column], self.total_steps - tail
        gave_up = 2 * self.refused_by_column[column] > skip_budget(self.config.speed_factor, self.total_steps)
        if self.forced_plan is not None or self.reuse_slot is not None or k + 1 >= end \
                or (gave_up and self.cache.prediction is Prediction.NOISE):
            return
        wanted = sum(plan[k + 1:end]) + 1
        later = cheapest_skips(wanted, self.sigmas, k + 1, end, self.config.max_skip_steps,
                               self._blocked_steps(), self.flow_matching)
        if sum(later) > sum(plan[k + 1:end]):
            self.replaced += 1
        plan[k + 1:] = later[k + 1:]

    def _blocked_steps(self) -> frozenset[int]:
        """This run's steps a plan leaves computed besides its window: a new model's first steps after
        a switch between the nodes (ScheduleStage), in this run's numbering."""
        if self.stage is None:
            return frozenset()
        return frozenset(k - self.stage.start for k in self.stage.blocked(self.switch_warmup)
                         if self.stage.start <= k < self.stage.end)

    def _make_plan(self, tail: int) -> None:
        """The speed's plan, made at the first decision. With 2+ calls a step, the warm-up's last
        first call is first compared with its answer from the previous step's later call: if even
        that near prediction misses by more than the error tolerance (ancestral/SDE samplers add
        fresh noise in between), farther ones would too, and nothing is planned."""
        first, end = max(self.config.warmup_steps, 3), self.total_steps - tail
        period = self.clock.period if self.clock.period and not self.clock.broken else 1
        self.reuse = [False] * self.total_steps
        # A sampler that adds fresh noise between its calls (dpm_2_ancestral, dpmpp_2s_ancestral,
        # seeds): no call predicts the next step's first, so whole steps are skipped, every call
        # answered by its own slot's x̂0 history.
        whole_steps = period < 2 or self.cache.prediction is Prediction.DENOISED
        if self.forced_plan is not None:
            self.plan = self.forced_plan + [False] * (self.total_steps - len(self.forced_plan))
        elif whole_steps and self.stage is not None:
            self.plan = self._whole_plan()[self.stage.start:self.stage.end]
        elif whole_steps:
            self.plan = speed_plan(self.config.speed_factor, self.sigmas, first, end, self.config.max_skip_steps,
                                   self.flow_matching)
        else:
            slot, miss = self._reuse_slot(period)
            if miss <= self.config.error_tolerance:
                self.reuse_slot = slot
                self.plan, self.reuse = reuse_plan(self.config.speed_factor, self.sigmas, first, end,
                                                   self.config.max_skip_steps, period)
            else:
                self.plan = [False] * self.total_steps
                self.note(f"no skips: the warm-up's last step missed the noise of its first model call by {miss:.2f} "
                          f"(relative, tolerance {self.config.error_tolerance:g}) even from the call just before it; "
                          "the sampler's later call does not predict its next first call")
        self.plans = []
        self._note_a_short_plan(1 if whole_steps else period)
        estimate_points = POINTS_NEEDED["quadratic"]  # the error estimate compares the quadratic and the linear
        if self.stage is not None and self.stage.start > 0 and self.switch_warmup < estimate_points and any(self.plan):
            self.note(f"after the switch the plan goes unchecked until this node has computed {estimate_points} "
                      f"steps: the error estimate compares {estimate_points} points of its own model, the "
                      f"extrapolation needs {self.switch_warmup}")
        self.eval_sigmas.clear()

    def _note_a_short_plan(self, period: int) -> None:
        """Say so when the schedule leaves the plan fewer skips than the speed asks for."""
        if self.forced_plan is not None or period >= 2:
            return
        steps = self.total_steps if self.stage is None else self.stage.total_steps
        asked = skip_budget(self.config.speed_factor, steps)
        planned = sum(self.plan) if self.stage is None else sum(self._whole_plan())
        if planned < asked:
            where = f"the {steps}-step schedule" if self.stage is None else (
                f"the {steps}-step schedule this node shares with another (its steps "
                f"{self.stage.start}-{self.stage.end - 1}; the second model's first {self.switch_warmup} steps are computed)")
            self.note(f"room for only {planned} of the {asked} skips {self.config.speed} asks for: {where} keeps "
                      f"the warm-up ({self.config.warmup_steps} steps) and the last steps computed, and skips at "
                      f"most {self.config.max_skip_steps} steps in a row")

    def _whole_plan(self) -> list[bool]:
        return self.stage.whole_plan(self.config.speed_factor, self.config.warmup_steps,
                                     self.config.keep_last_steps, self.config.max_skip_steps, self.switch_warmup,
                                     self.flow_matching)

    def _reuse_slot(self, period: int) -> tuple[int, float]:
        """For a sampler with 2+ calls a step: the slot whose noise answers the next step's first
        call, and how far that answer missed the warm-up's last first call (relative). The slot is
        the latest whose call of step j was at σ_(j+1) in every warm-up step (heun's corrector:
        that very σ), else the last (dpm_2's midpoint, extrapolated to σ_k). One host read, once."""
        seen = [(p.slot, p.step, self.eval_sigmas[p.index]) for p in self.clock.positions
                if p.slot > 0 and p.index in self.eval_sigmas and p.step + 1 < len(self.sigmas)]
        device = self.d_history.device
        read = HostRead(device)
        sigmas_seen = read.add(torch.cat([sigma.float().to(device).reshape(-1) for _, _, sigma in seen])) if seen else None
        misses = read.add(torch.cat([self._prediction_miss(slot).to(device).reshape(1) for slot in range(1, period)]))
        values = read.read()
        matches: dict[int, bool] = {}
        for (slot, step, _), value in zip(seen, [] if sigmas_seen is None else values[sigmas_seen]):
            target = self.sigmas[step + 1]
            matches[slot] = matches.get(slot, True) and target > 0 and abs(value - target) <= SAME_SIGMA_RTOL * target
        slot = max((slot for slot, ok in matches.items() if ok), default=period - 1)
        return slot, values[misses][slot - 1]

    def _prediction_miss(self, slot: int) -> torch.Tensor:
        """The largest relative miss (over cond chunks and rows) of answering the newest first call
        from `slot`'s earlier calls; inf where nothing could be tried."""
        tried = [self.cache.backtest(key, key._replace(slot=slot)) for key in self.cache.keys_at_slot(0)]
        tried = [miss.max().reshape(1) for miss in tried if miss is not None]
        return torch.cat(tried).max() if tried else torch.tensor(math.inf)

    def _prediction_gaps(self, k: int, columns: int) -> torch.Tensor:
        """The error estimate at step k's σ per row (mean over cond chunks; the batch's mean when
        the batch decides as one). Whole chunks at once unless per-sample histories differ."""
        device = self.d_history.device
        # what the skip extrapolates: the first call's noise to σ_k, or with a reuse slot (which
        # answers the first call) that slot's noise on to σ_(k+1)
        slot = self.reuse_slot or 0
        sigma = self.sigmas[k + 1] if self.reuse_slot is not None else self.sigmas[k]
        per_key = []
        for points in self.cache.newest_points(slot):
            if all(p.rows is None for p in points) and points[-1].value.shape[0] == self.rows:
                per_key.append(prediction_gap(points, sigma).to(device))
            else:
                per_key.append(torch.cat([prediction_gap(self.cache.points_of_row(points, row), sigma).to(device)
                                          for row in range(self.rows)]))
        gaps = torch.stack(per_key).mean(0) if per_key else torch.zeros(self.rows, device=device)
        return gaps if columns == self.rows else gaps.mean().reshape(1)

    def outcome(self, corrected_rows: float | None) -> RunOutcome:
        """What the decisions came to, for the trace's notes at the run's end."""
        denoised = self.cache.prediction is Prediction.DENOISED
        return RunOutcome(refused=self.refused, replaced=self.replaced, error_tolerance=self._tolerance(),
                          extrapolated="x̂0" if denoised else "noise",
                          corrected_rows=corrected_rows, kept_for_long_step=len(self.kept_for_long_step),
                          first_call_reused=len(self.reused_steps), batch_rows=self.rows, per_sample=self.per_sample)

    def read_back(self, corrected: torch.Tensor | None) -> tuple[list[float | None], float | None]:
        """d_k of the whole batch per step, and the corrections' count, in one transfer (the run's end)."""
        known = [k for k in range(self.total_steps) if self.has_d[k]]
        read = HostRead()
        means = read.add(torch.stack([self.d_history[k].float().mean() for k in known])) if known else None
        count = read.add(corrected.float()) if corrected is not None else None
        values = read.read()
        batch_d: list[float | None] = [None] * self.total_steps
        for k, value in zip(known, [] if means is None else values[means]):
            batch_d[k] = value
        return batch_d, (values[count][0] if count is not None else None)
