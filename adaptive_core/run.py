"""All state of one sampler run, created at its start and dropped at its end.

A host drives it through three events:
  begin_evaluation(x)  once per model evaluation, with the full latent (decides skips),
  on_step(k)           when the sampler reports step k (its progress callback),
  model_call(...)      for each batched model call of the evaluation (skips or computes),
  end_evaluation(x, x̂0) with the guided result (corrects the step after a skip: correction.py).

Decisions are kept per batch row. With per_sample off (the paper) all rows share one decision
from the whole latent; with it on, each row has its own d_k, criterion, Cmax count and mask, and a
call computes only the rows that need it (each row's cond and uncond together). The decision
(decision.py) runs on a [steps, rows] tensor history with one host sync per step.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Callable, Hashable, Sequence

import torch

from .config import AdaptiveConfig
from .correction import SkipCorrection
from .criterion import criterion_value
from .decision import paper_skip, prediction_gap, reuse_plan, reused_by_long_step, speed_plan
from .noise_cache import SAME_SIGMA_RTOL, NoiseCache, implied_noise
from .step_clock import EvalPosition, StepClock
from .trace import AdaptiveTrace, StepRecord

def to_device(values: list, like: torch.Tensor) -> torch.Tensor:
    """Host numbers onto `like`'s device without waiting for it (no host sync)."""
    return torch.tensor(values).to(like.device, non_blocking=True)


RowsCompute = Callable[[list[int]], torch.Tensor]  # computes the given rows of the batched call
WRAPPER_NEVER_RAN = ("its model wrapper never ran (another node replaced the model's "
                     "model_function_wrapper without chaining it): nothing was skipped")


@dataclass
class EvalCalls:
    """What one model evaluation cost, counted from the calls actually made."""
    model_calls: int = 0      # real model calls
    cached_calls: int = 0     # calls answered from the noise cache
    rows_sent: int = 0        # batch rows sent to the model (cond and uncond rows count)
    rows_run: set[int] = field(default_factory=set)  # batch rows that some real call computed
    # Calls so far in this evaluation per cond chunk: guidance nodes (PAG, SAG, SLG, PerpNeg)
    # call the model again with the same cond, and each such call has its own cached noise.
    seen: dict[Hashable, int] = field(default_factory=dict)

    def call_keys(self, chunk_keys: Sequence[Hashable], slot: int) -> list[tuple]:
        """Cache keys of a call's chunks: (cond chunk, its call within the evaluation, slot)."""
        keys = []
        for key in chunk_keys:
            occurrence = self.seen.get(key, 0)
            self.seen[key] = occurrence + 1
            keys.append((key, occurrence, slot))
        return keys


class AdaptiveRun:
    def __init__(self, config: AdaptiveConfig, sigmas: Sequence[float], label: str = "",
                 skip_path: Sequence[bool] | None = None):
        """skip_path: follow this mask (True = skip step k) instead of the criterion."""
        self.config = config
        self.skip_path = None if skip_path is None else [bool(s) for s in skip_path]
        self.per_sample = config.per_sample and self.skip_path is None
        sigmas = [float(s) for s in sigmas]
        self.sigmas = sigmas
        self.trace = AdaptiveTrace(config, [StepRecord(k, s) for k, s in enumerate(sigmas[:-1])], label)
        self.clock = StepClock()
        self.cache = NoiseCache(config.noise_reuse)
        self.rows = 0                                           # batch rows, from the first evaluation
        self.d: list[torch.Tensor | None] = [None] * self.total_steps  # per step: d_k of each row
        self.d_history: torch.Tensor | None = None  # [steps, rows] float32 on the latent's device
        self.skip: list[list[bool]] = [[] for _ in range(self.total_steps)]  # per step, per row
        self.in_a_row: list[int] = []
        self.plan: list[bool] | None = None         # a speed's skip mask, made at its first decision
        self.refused = 0                            # planned skips (row-steps) the error estimate refused
        self.kept_for_long_step: set[int] = set()   # planned skips computed: a long step reuses them
        self.past_values: bool | None = None        # the sampler steps with past values (read once)
        self.asked_past_values = False              # the decision's read carries that answer last
        # Samplers that call the model 2+ times a step: the slot whose noise answers the next step's
        # first call (heun's at that very σ), and the steps that skip only that first call.
        self.reuse_slot: int | None = None
        self.reuse: list[bool] = []
        self.reused_steps: set[int] = set()
        self.eval_sigmas: dict[int, torch.Tensor] = {}  # σ of each evaluation until the plan is made
        self.step_inputs: dict[int, torch.Tensor] = {}          # first-evaluation input of recent steps
        self.current: EvalPosition | None = None
        self.latest_input: torch.Tensor | None = None
        # Before the rhythm is known an evaluation's step is told by the callback after it: the last
        # (evaluation index, x, x̂0), recorded for the correction once that callback names its step.
        self.unplaced: tuple[int, torch.Tensor, torch.Tensor] | None = None
        # With a speed, the computed step after a skip corrects it (steps linear in recent x̂0s or noises:
        # correction.py).
        self.correction = SkipCorrection() if config.speed_factor is not None and skip_path is None else None
        self.calls_by_eval: list[EvalCalls] = []  # by evaluation index
        self.skipping_allowed = config.enabled or self.skip_path is not None
        self._lock = threading.Lock()
        if self.skipping_allowed and 0 < self.total_steps <= config.warmup_steps:
            # A 1-4 step Turbo/LCM/Lightning graph: a drop-in KSampler runs it, unskipped.
            self.disable_skipping(f"only {self.total_steps} steps, not more than warmup_steps "
                                  f"({config.warmup_steps}): ran unskipped")

    def __deepcopy__(self, memo):
        # The run lives in a copy of model_options; a pack deep-copying those mid-run must get
        # the same run (its lock cannot be copied, and a copy would split the state in two).
        return self

    @property
    def total_steps(self) -> int:
        return len(self.trace.steps)

    def disable_skipping(self, reason: str) -> None:
        if self.skipping_allowed:
            self.skipping_allowed = False
            self.trace.notes.append(reason)

    def fall_back_to_batch_decisions(self, reason: str) -> None:
        if self.per_sample:
            self.per_sample = False
            self.trace.notes.append(f"per-sample decisions off: {reason}")

    # -- events -------------------------------------------------------------------------------
    def begin_evaluation(self, x: torch.Tensor) -> None:
        with self._lock:
            if not self.rows:
                self.rows = x.shape[0]
                self.in_a_row = [0] * self.rows
            elif x.shape[0] != self.rows:
                self.disable_skipping("the batch size changed during the run")
            position = self.clock.next_evaluation()
            self.current = position
            self.calls_by_eval.append(EvalCalls())
            # Kept beyond this evaluation only if it starts a step (some samplers update x in
            # place afterwards, e.g. ddpm): once the rhythm is known, only step starts are copied.
            if position.predicted_start or self.clock.period is None or self.clock.broken:
                self.latest_input = x.detach().clone()
            if position.predicted_start and position.step < self.total_steps:
                self._start_step(position.step, self.latest_input, decide=True)

    def on_step(self, step: int) -> None:
        with self._lock:
            for position in self.clock.on_callback(step):
                self.cache.retag(position.index, lambda key, p=position: (key[0], key[1], p.slot))
            if self.clock.period is not None:
                self.cache.drop_spare()
            if self.clock.broken:
                self._stop_after_rhythm_change(step)
            self._place_warmup_evaluation(step)
            if 0 <= step < self.total_steps and step not in self.step_inputs \
                    and self.latest_input is not None:
                self._start_step(step, self.latest_input, decide=False)

    def model_call(self, compute: Callable[[], torch.Tensor], x: torch.Tensor, sigma: torch.Tensor,
                   chunk_keys: Sequence[Hashable], compute_rows: RowsCompute | None = None) -> torch.Tensor:
        """Answer one batched call (equal chunks, one per key), computing only what is needed.

        compute_rows(indices) computes a subset of the call's rows; None when the host cannot
        split this call by rows (then a partly skipped call is computed whole).
        """
        with self._lock:
            position = self.current
            calls = None if position is None else self.calls_by_eval[position.index]
            keys = list(chunk_keys) if calls is None else calls.call_keys(chunk_keys, position.slot)
            if position is not None and self.plan is None and self.config.speed_factor is not None:
                self.eval_sigmas.setdefault(position.index, sigma.reshape(-1)[:1])
            need = self._rows_to_compute(position, x, keys)
            if calls is not None and not need:
                calls.cached_calls += 1
                return self._answer_from_cache(x, sigma, keys)
        rows = x.shape[0] // len(keys)
        if len(need) == rows or compute_rows is None:
            out, computed = compute(), list(range(rows))
        else:
            computed = need
            indices = [chunk * rows + row for chunk in range(len(keys)) for row in need]
            with self._lock:
                out = self._answer_from_cache(x, sigma, keys, fill_rows=need)
            out[indices] = compute_rows(indices).to(out.dtype)
        with self._lock:
            if calls is not None:
                calls.model_calls += 1
                calls.rows_sent += len(computed) * len(keys)
                calls.rows_run.update(computed)
                if self.skipping_allowed and position.step < self.total_steps:
                    self._store(position.index, x, out, sigma, keys, computed)
        return out

    def end_evaluation(self, x: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
        """The evaluation's guided x̂0, corrected where the step before it was skipped."""
        with self._lock:
            position = self.current
            if self.correction is None or position is None or position.step >= self.total_steps \
                    or (self.clock.period or 1) != 1 or self.clock.broken \
                    or x.shape[0] != self.rows or denoised.shape[0] != self.rows:
                return denoised
            if self.clock.period is None and position.index > 0:  # the warm-up: recorded at its callback
                channels = denoised.shape[1]  # copies: the sampler may update x in place before then
                self.unplaced = (position.index, x[:, :channels].to(torch.float32, copy=True),
                                 denoised.to(torch.float32, copy=True))
                return denoised
            if position.slot != 0:
                return denoised
            calls = self.calls_by_eval[position.index]
            computed = sorted(calls.rows_run)
            skipped = [row for row in range(self.rows) if row not in calls.rows_run] if calls.cached_calls else []
            return self.correction.after_evaluation(position.step, x, denoised, self.sigmas, skipped, computed)

    def _place_warmup_evaluation(self, step: int) -> None:
        """Record a warm-up step's evaluation for the correction, now that the callback says it was the
        first of `step`: the first skips' fitted steps reach back into the warm-up."""
        unplaced, self.unplaced = self.unplaced, None
        if unplaced is not None and self.correction is not None and unplaced[0] == self.clock.evaluations - 1 \
                and 0 <= step < self.total_steps:
            _, x, denoised = unplaced
            self.correction.record_warmup(step, x, denoised, self.sigmas[step])

    def live_mask(self, upto: int) -> str:
        """Steps so far: "1" computed, "0" skipped, "." not reached (for the live UI)."""
        with self._lock:
            computed = self._computed_rows()
            return "".join("." if k > upto else ("1" if any(computed[k]) else "0")
                           for k in range(self.total_steps))

    def finish(self) -> AdaptiveTrace:
        """Fill the per-step counts and masks and drop every tensor; the trace is what remains."""
        with self._lock:
            last = self.total_steps - 1
            for position, calls in zip(self.clock.positions, self.calls_by_eval):
                if last >= 0:  # samplers with their own steps may call past the schedule
                    record = self.trace.steps[min(position.step, last)]
                    record.model_calls += calls.model_calls
                    record.cached_calls += calls.cached_calls
                    record.model_rows += calls.rows_sent
            if self.calls_by_eval and not any(c.model_calls or c.cached_calls for c in self.calls_by_eval):
                self.trace.inactive = WRAPPER_NEVER_RAN
            if self.refused:
                self.trace.notes.append(
                    f"{self.refused} planned skips refused: the predicted noise error was above the tolerance "
                    f"({self.config.error_tolerance:g}); ancestral/SDE samplers add fresh noise every step")
            computed = self._computed_rows()
            corrected = None if self.correction is None else self.correction.corrected_rows
            batch_d, corrected_rows = self._read_back(corrected)
            for k, record in enumerate(self.trace.steps):
                record.d = batch_d[k]
                record.criterion = criterion_value(batch_d, k)
                record.computed = any(computed[k])
            self.trace.rows = [[computed[k][row] for k in range(self.total_steps)]
                               for row in range(max(self.rows, 1))]
            self.trace.per_sample = self.per_sample
            self.trace.kept_last_steps = self.clock.protected_tail(
                0 if self.skip_path is not None else self.config.keep_last_steps)
            self._note_corrections(corrected_rows)
            if self.kept_for_long_step:
                self.trace.notes.append(
                    f"{len(self.kept_for_long_step)} planned skips computed: a much longer step follows them "
                    "and this sampler steps with its past values, which a skip would leave in its memory")
            if self.reused_steps:
                self.trace.notes.append(
                    f"{len(self.reused_steps)} steps skipped only their first model call (its noise came from "
                    "the previous step's later call)")
            self.cache.clear()
            self.eval_sigmas.clear()
            self.step_inputs.clear()
            self.latest_input = None
            self.unplaced = None
            self.current = None
            return self.trace

    def _note_corrections(self, rows: float | None) -> None:
        if self.correction is None:
            return
        if rows:
            whole = not self.per_sample and int(rows) % max(self.rows, 1) == 0  # else some rows of a step
            counted = f"{int(rows) // max(self.rows, 1)} skipped steps were" if whole else \
                f"{int(rows)} skipped row-steps were"
            self.trace.notes.append(f"{counted} corrected by the computed step after them (steps linear in "
                                    "the sampler's recent x̂0 or noise: Euler, DDIM, DPM++ 2M, res_multistep, "
                                    "UniPC, DEIS, iPNDM, LMS, …)")
        self.correction.reset()

    def _read_back(self, corrected: torch.Tensor | None) -> tuple[list[float | None], float | None]:
        """d_k of the whole batch per step, and the corrections' count, in one transfer."""
        known = [k for k, d in enumerate(self.d) if d is not None]
        parts = [self.d[k].float().mean() for k in known]
        if corrected is not None:
            device = parts[0].device if parts else corrected.device
            parts.append(corrected.float().to(device))
        values = torch.stack(parts).tolist() if parts else []
        batch_d: list[float | None] = [None] * self.total_steps
        for k, value in zip(known, values):
            batch_d[k] = value
        return batch_d, (values[-1] if corrected is not None else None)

    def _computed_rows(self) -> list[list[bool]]:
        """Per step, per row: computed. Derived from the calls made, not from the decision: a
        skip the cache could not answer (a cond that starts mid-run, a new shape) was computed."""
        rows = max(self.rows, 1)
        if self.calls_by_eval and not any(c.model_calls or c.cached_calls for c in self.calls_by_eval):
            return [[True] * rows for _ in range(self.total_steps)]  # our wrapper never ran
        ran: list[set[int]] = [set() for _ in range(self.total_steps)]
        for position, calls in zip(self.clock.positions, self.calls_by_eval):
            if position.step < self.total_steps:
                ran[position.step] |= calls.rows_run
        return [[not self._row_skipped(k, row) or row in ran[k] for row in range(rows)]
                for k in range(self.total_steps)]

    # -- decisions ------------------------------------------------------------------------------
    def _start_step(self, k: int, x: torch.Tensor, decide: bool) -> None:
        previous = self.step_inputs.get(k - 1)
        if self.d_history is None:
            self.d_history = torch.zeros(self.total_steps, x.shape[0], device=x.device)
        if previous is not None and previous.shape == x.shape and x.shape[0] == self.d_history.shape[1]:
            change = (x.float() - previous.float()).abs()
            self.d_history[k] = change.reshape(change.shape[0], -1).mean(dim=1)  # d_k of each row
            self.d[k] = self.d_history[k]
        self.step_inputs = {k: x}
        skip = self._decide(k) if decide and self.skipping_allowed else [False] * self.rows
        self.skip[k] = skip
        self.in_a_row = [count + 1 if s else 0 for count, s in zip(self.in_a_row, skip)]

    def _decide(self, k: int) -> list[bool]:
        """Skip step k? One list per row, from tensors with one host sync (the final tolist)."""
        tail = self.clock.protected_tail(0 if self.skip_path is not None else self.config.keep_last_steps)
        if self.skip_path is not None:  # a replayed path: only the sampler's rhythm limits it
            return [k < len(self.skip_path) and self.skip_path[k] and k < self.total_steps - tail] * self.rows
        if not self.config.enabled or k < max(self.config.warmup_steps, 3) or k >= self.total_steps - tail \
                or any(self.d[j] is None for j in (k, k - 1, k - 2)):
            return [False] * self.rows
        if self.config.speed_factor is None:
            skip = self._paper_skip(k).tolist()  # the one host sync of this step
        else:
            planned = self._planned_skip(k, tail)
            if planned is None:
                return [False] * self.rows  # the plan computes this step: no host sync
            skip = planned.tolist()  # the one host sync of this step
            if self.asked_past_values:
                self.asked_past_values, self.past_values, skip = False, skip[-1], skip[:-1]
                if self.past_values:
                    self.kept_for_long_step.add(k)
                    return [False] * self.rows
            self.refused += skip.count(False)
            if self.reuse[k]:  # only the first call is skipped, and only if every row allows it
                if all(skip):
                    self.reused_steps.add(k)
                return [False] * self.rows
        return skip if self.per_sample else skip * self.rows

    def _paper_skip(self, k: int) -> torch.Tensor:
        d = self.d_history[:k + 1] if self.per_sample else self.d_history[:k + 1].mean(1, keepdim=True)
        in_a_row = self.in_a_row if self.per_sample else [max(self.in_a_row)]
        return paper_skip(d, k, self.config.threshold, self._room(in_a_row, self.config.max_skip_steps, d))

    def _planned_skip(self, k: int, tail: int) -> torch.Tensor | None:
        """The plan's skip at k, refused per row above the error tolerance; None: not planned."""
        if self.plan is None:  # made here, once warm-up has shown the sampler's rhythm (its kept tail)
            self._make_plan(tail)
        if not (self.plan[k] or self.reuse[k]):
            return None
        before_long_step = self.plan[k] and reused_by_long_step(self.sigmas, k)
        if before_long_step and self.past_values:
            self.kept_for_long_step.add(k)
            return None
        allowed = self._prediction_gaps(k, self.rows if self.per_sample else 1) <= self.config.error_tolerance
        past = None if self.correction is None else self.correction.past_value_rows
        if before_long_step and self.past_values is None and past is not None:
            # whether the sampler steps with past values, read with this decision (_decide), once a run
            self.asked_past_values = True
            return torch.cat([allowed.reshape(-1), (past > 0).reshape(1).to(allowed.device)])
        return allowed

    def _make_plan(self, tail: int) -> None:
        """The speed's plan, made at the first decision. With 2+ calls a step, the warm-up's last
        first call is first compared with its answer from the previous step's later call: if even
        that near prediction misses by more than the error tolerance (ancestral/SDE samplers add
        fresh noise in between), farther ones would too, and nothing is planned."""
        first, end = max(self.config.warmup_steps, 3), self.total_steps - tail
        period = self.clock.period if self.clock.period and not self.clock.broken else 1
        self.reuse = [False] * self.total_steps
        if period < 2:
            self.plan = speed_plan(self.config.speed_factor, self.sigmas, first, end, self.config.max_skip_steps)
        else:
            slot, miss = self._reuse_slot(period)
            if miss <= self.config.error_tolerance:
                self.reuse_slot = slot
                self.plan, self.reuse = reuse_plan(self.config.speed_factor, self.sigmas, first, end,
                                                   self.config.max_skip_steps, period)
            else:
                self.plan = [False] * self.total_steps
                self.trace.notes.append(
                    f"no skips: the warm-up's last step missed the noise of its first model call by {miss:.2f} "
                    f"(relative, tolerance {self.config.error_tolerance:g}) even from the call just before it; "
                    "ancestral/SDE samplers add fresh noise every step")
        self.eval_sigmas.clear()

    def _reuse_slot(self, period: int) -> tuple[int, float]:
        """For a sampler with 2+ calls a step: the slot whose noise answers the next step's first
        call, and how far that answer missed the warm-up's last first call (relative). The slot is
        the latest whose call of step j was at σ_(j+1) in every warm-up step (heun's corrector:
        that very σ), else the last (dpm_2's midpoint, extrapolated to σ_k). One host read, once."""
        seen = [(p.slot, p.step, self.eval_sigmas[p.index]) for p in self.clock.positions
                if p.slot > 0 and p.index in self.eval_sigmas and p.step + 1 < len(self.sigmas)]
        misses = [self._prediction_miss(slot) for slot in range(1, period)]
        device = self.d_history.device
        values = torch.cat([sigma.float().to(device).reshape(-1) for _, _, sigma in seen]
                           + [miss.to(device).reshape(1) for miss in misses]).tolist()
        matches: dict[int, bool] = {}
        for (slot, step, _), value in zip(seen, values):
            target = self.sigmas[step + 1]
            matches[slot] = matches.get(slot, True) and target > 0 and abs(value - target) <= SAME_SIGMA_RTOL * target
        slot = max((slot for slot, ok in matches.items() if ok), default=period - 1)
        return slot, values[len(seen) + slot - 1]

    def _prediction_miss(self, slot: int) -> torch.Tensor:
        """The largest relative miss (over cond chunks and rows) of answering the newest first call
        from `slot`'s earlier calls; inf where nothing could be tried."""
        tried = [self.cache.backtest(key, key[:-1] + (slot,)) for key in self.cache.keys_at_slot(0)]
        tried = [miss.max().reshape(1) for miss in tried if miss is not None]
        return torch.cat(tried).max() if tried else torch.tensor(math.inf)

    @staticmethod
    def _room(in_a_row: list[int], cmax: int, like: torch.Tensor) -> torch.Tensor:
        return to_device([count < cmax for count in in_a_row], like)

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
            if all(p.rows is None for p in points) and points[-1].eps.shape[0] == self.rows:
                per_key.append(prediction_gap(points, sigma).to(device))
            else:
                per_key.append(torch.cat([prediction_gap(self.cache.points_of_row(points, row), sigma).to(device)
                                          for row in range(self.rows)]))
        gaps = torch.stack(per_key).mean(0) if per_key else torch.zeros(self.rows, device=device)
        return gaps if columns == self.rows else gaps.mean().reshape(1)

    def _stop_after_rhythm_change(self, step: int) -> None:
        tail = self.clock.protected_tail(self.config.keep_last_steps)
        if step < self.total_steps - tail:
            self.disable_skipping(f"the sampler changed its rhythm of model calls at step {step}; "
                                  "later steps were computed")
        self.skipping_allowed = False  # in the protected tail: expected, nothing to report

    def _row_skipped(self, k: int, row: int) -> bool:
        """The decision (not necessarily what ran: see _computed_rows)."""
        return row < len(self.skip[k]) and self.skip[k][row]

    # -- the noise cache ------------------------------------------------------------------------
    # Keys are (cond chunk, its call within the evaluation, slot); a point holds a whole chunk.
    # Nothing here reads a tensor back to the host: rows and shapes are host facts.
    def _rows_to_compute(self, position: EvalPosition | None, x: torch.Tensor, keys) -> list[int]:
        rows = x.shape[0] // len(keys)
        everything = list(range(rows))
        if position is None or not self.skipping_allowed or position.step >= self.total_steps \
                or rows != self.rows:
            return everything
        reused = position.slot == 0 and position.step in self.reused_steps
        skipped = [row for row in everything if reused or self._row_skipped(position.step, row)]
        keys = [self._answer_key(key) for key in keys]
        chunk = x[:rows]
        if len(skipped) == rows and all(self.cache.can_answer(key, chunk) for key in keys):
            return []  # the common case: the whole call is answered from the cache
        return [row for row in everything if row not in skipped
                or not all(self.cache.can_answer(key, chunk, (row,)) for key in keys)]

    def _answer_from_cache(self, x, sigma, keys, fill_rows: list[int] | None = None) -> torch.Tensor:
        """x̂0 for every chunk from the cache, whole chunks at a time; rows in `fill_rows` are
        left as x (the caller computes them)."""
        rows = x.shape[0] // len(keys)
        keys = [self._answer_key(key) for key in keys]
        sigma = sigma.reshape(-1)
        if sigma.numel() == 1:
            sigma = sigma.expand(x.shape[0])
        channels = self._out_channels(keys, x[:rows])
        answered = None if fill_rows is None else [row for row in range(rows) if row not in fill_rows]
        parts = []
        for chunk, key in enumerate(keys):
            x_chunk, sigma_chunk = x[chunk * rows:(chunk + 1) * rows], sigma[chunk * rows:(chunk + 1) * rows]
            if answered is None:
                parts.append(self.cache.answer(key, x_chunk, sigma_chunk, channels))
                continue
            part = x_chunk[:, :channels].clone()
            if answered:
                index = torch.tensor(answered, device=x.device)
                part.index_copy_(0, index, self.cache.answer(key, x_chunk, sigma_chunk, channels, rows=answered))
            parts.append(part)
        return torch.cat(parts)

    def _store(self, index: int, x, out, sigma, keys, computed: list[int]) -> None:
        """File ε of the computed rows, one tensor operation for the whole call."""
        rows = x.shape[0] // len(keys)
        sigma = sigma.reshape(-1)
        if sigma.numel() == 1:
            sigma = sigma.expand(x.shape[0])
        eps = implied_noise(x, out, sigma)  # ε = 0 where σ = 0: never read (final steps compute)
        whole = len(computed) == rows
        picked = None if whole else torch.tensor(computed, device=x.device)
        for chunk, key in enumerate(keys):
            chunk_eps, chunk_sigma = eps[chunk * rows:(chunk + 1) * rows], sigma[chunk * rows:(chunk + 1) * rows]
            if whole:
                self.cache.store(key, chunk_sigma, chunk_eps, index, chunk_rows=rows)
            else:
                self.cache.store(key, chunk_sigma.index_select(0, picked.to(chunk_sigma.device)),
                                 chunk_eps.index_select(0, picked), index, rows=computed, chunk_rows=rows)

    def _answer_key(self, key: tuple) -> tuple:
        """A step's first call (slot 0, the key's last part) is answered from the reuse slot's
        noise (heun's newest point is at this very σ), other slots from their own."""
        if self.reuse_slot is None or key[-1] != 0:
            return key
        return key[:-1] + (self.reuse_slot,)

    def _out_channels(self, keys, chunk: torch.Tensor) -> int:
        for key in keys:
            if self.cache.can_answer(key, chunk):
                return self.cache.output_channels(key)
        return chunk.shape[1]
