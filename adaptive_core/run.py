"""All state of one sampler run, created at its start and dropped at its end.

A host drives it through three events:
  begin_evaluation(x)  once per model evaluation, with the full latent (decides skips),
  on_step(k)           when the sampler reports step k (its progress callback),
  model_call(...)      for each batched model call of the evaluation (skips or computes).

Decisions are kept per batch row. With per_sample off (the paper) all rows share one decision
from the whole latent; with it on, each row has its own d_k, criterion, Cmax count and mask, and a
call computes only the rows that need it (each row's cond and uncond together). The decision
(decision.py) runs on a [steps, rows] tensor history with one host sync per step.
"""
from __future__ import annotations

import threading
from typing import Callable, Hashable, Sequence

import torch

from .config import AdaptiveConfig
from .criterion import criterion_value
from .decision import budget_skip, paper_skip, plan_budget, prediction_gap, relative_criterion
from .noise_cache import NoiseCache, implied_noise
from .step_clock import EvalPosition, StepClock
from .trace import AdaptiveTrace, StepRecord

def to_device(values: list, like: torch.Tensor) -> torch.Tensor:
    """Host numbers onto `like`'s device without waiting for it (no host sync)."""
    return torch.tensor(values).to(like.device, non_blocking=True)


RowsCompute = Callable[[list[int]], torch.Tensor]  # computes the given rows of the batched call


class AdaptiveRun:
    def __init__(self, config: AdaptiveConfig, sigmas: Sequence[float], label: str = "",
                 skip_path: Sequence[bool] | None = None):
        """skip_path: follow this mask (True = skip step k) instead of the criterion."""
        self.config = config
        self.skip_path = None if skip_path is None else [bool(s) for s in skip_path]
        self.per_sample = config.per_sample and self.skip_path is None
        sigmas = [float(s) for s in sigmas]
        self.trace = AdaptiveTrace(config, [StepRecord(k, s) for k, s in enumerate(sigmas[:-1])], label)
        self.clock = StepClock()
        self.cache = NoiseCache(config.noise_reuse)
        self.rows = 0                                           # batch rows, from the first evaluation
        self.d: list[torch.Tensor | None] = [None] * self.total_steps  # per step: d_k of each row
        self.d_history: torch.Tensor | None = None  # [steps, rows] float32 on the latent's device
        self.skip: list[list[bool]] = [[] for _ in range(self.total_steps)]  # per step, per row
        self.in_a_row: list[int] = []
        self.skipped: list[int] = []                # per row, for the speed budget
        self.signals: torch.Tensor | None = None    # [skippable steps, rows, 2] criterion, error
        self.skippable_seen = 0
        self.step_inputs: dict[int, torch.Tensor] = {}          # first-evaluation input of recent steps
        self.current: EvalPosition | None = None
        self.latest_input: torch.Tensor | None = None
        self.calls_by_eval: list[list[int]] = []  # [model calls, cached calls, rows computed]
        self.skipping_allowed = config.enabled or self.skip_path is not None
        self._lock = threading.Lock()

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
                self.in_a_row, self.skipped = [0] * self.rows, [0] * self.rows
            elif x.shape[0] != self.rows:
                self.disable_skipping("the batch size changed during the run")
            position = self.clock.next_evaluation()
            self.current = position
            self.calls_by_eval.append([0, 0, 0])
            self.latest_input = x.detach().clone()
            if position.predicted_start and position.step < self.total_steps:
                self._start_step(position.step, self.latest_input, decide=True)

    def on_step(self, step: int) -> None:
        with self._lock:
            for position in self.clock.on_callback(step):
                self.cache.retag(position.index, lambda key, p=position: (key[0], p.slot, key[2]))
            if self.clock.broken:
                self._stop_after_rhythm_change(step)
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
            need = self._rows_to_compute(position, x, chunk_keys)
            if position is not None and not need:
                out = self._answer_from_cache(position, x, sigma, chunk_keys)
                self.calls_by_eval[position.index][1] += 1
                return out
        rows = x.shape[0] // len(chunk_keys)
        if len(need) == rows or compute_rows is None:
            out, indices = compute(), list(range(x.shape[0]))
        else:
            indices = [chunk * rows + row for chunk in range(len(chunk_keys)) for row in need]
            with self._lock:
                out = self._answer_from_cache(position, x, sigma, chunk_keys, only_rows=need)
            out[indices] = compute_rows(indices).to(out.dtype)
        with self._lock:
            if position is not None:
                self.calls_by_eval[position.index][0] += 1
                self.calls_by_eval[position.index][2] += len(indices)
                if self.skipping_allowed and position.step < self.total_steps:
                    self._store(position, x, out, sigma, chunk_keys, sorted({i % rows for i in indices}))
        return out

    def live_mask(self, upto: int) -> str:
        """Steps so far: "1" computed, "0" skipped, "." not reached (for the live UI)."""
        with self._lock:
            return "".join("." if k > upto else ("1" if self._step_computed(k) else "0")
                           for k in range(self.total_steps))

    def finish(self) -> AdaptiveTrace:
        """Fill the per-step counts and masks and drop every tensor; the trace is what remains."""
        with self._lock:
            last = self.total_steps - 1
            for position, (calls, cached, rows) in zip(self.clock.positions, self.calls_by_eval):
                if last >= 0:  # samplers with their own steps may call past the schedule
                    record = self.trace.steps[min(position.step, last)]
                    record.model_calls += calls
                    record.cached_calls += cached
                    record.model_rows += rows
            batch_d = [None if d is None else float(d.mean()) for d in self.d]
            for k, record in enumerate(self.trace.steps):
                record.d = batch_d[k]
                record.criterion = criterion_value(batch_d, k)
                record.computed = self._step_computed(k)
            self.trace.rows = [[not self._row_skipped(k, row) for k in range(self.total_steps)]
                               for row in range(max(self.rows, 1))]
            self.trace.per_sample = self.per_sample
            self.trace.kept_last_steps = self.clock.protected_tail(
                0 if self.skip_path is not None else self.config.keep_last_steps)
            self.cache.clear()
            self.step_inputs.clear()
            self.latest_input = None
            self.current = None
            return self.trace

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
        self.skipped = [count + s for count, s in zip(self.skipped, skip)]

    def _decide(self, k: int) -> list[bool]:
        """Skip step k? One list per row, from tensors with one host sync (the final tolist)."""
        tail = self.clock.protected_tail(0 if self.skip_path is not None else self.config.keep_last_steps)
        if self.skip_path is not None:  # a replayed path: only the sampler's rhythm limits it
            return [k < len(self.skip_path) and self.skip_path[k] and k < self.total_steps - tail] * self.rows
        if not self.config.enabled or k < max(self.config.warmup_steps, 3) or k >= self.total_steps - tail \
                or any(self.d[j] is None for j in (k, k - 1, k - 2)):
            return [False] * self.rows
        d = self.d_history[:k + 1] if self.per_sample else self.d_history[:k + 1].mean(1, keepdim=True)
        in_a_row = self.in_a_row if self.per_sample else [max(self.in_a_row)]
        factor, cmax = self.config.speed_factor, self.config.max_skip_steps
        if factor is None:
            skip = paper_skip(d, k, self.config.threshold, self._room(in_a_row, cmax, d))
        else:
            skippable = self.total_steps - tail - max(self.config.warmup_steps, 3)
            budget = plan_budget(factor, self.total_steps, skippable, cmax)
            signals = torch.stack([relative_criterion(d, k), self._prediction_gaps(k, d.shape[1])], -1)
            if self.signals is None or self.signals.shape[1] != d.shape[1]:
                self.signals = torch.zeros(skippable, d.shape[1], 2, device=d.device)
            skipped = self.skipped if self.per_sample else [max(self.skipped)]
            credit = to_device([budget.rate * (self.skippable_seen + 1) - s for s in skipped], d)
            skip = budget_skip(signals, self.signals[:self.skippable_seen], credit,
                               self._room(in_a_row, budget.max_in_a_row, d), self.config.error_tolerance)
            self.signals[min(self.skippable_seen, skippable - 1)] = signals
            self.skippable_seen += 1
        skip = skip.tolist()  # the one host sync of this step
        return skip if self.per_sample else skip * self.rows

    @staticmethod
    def _room(in_a_row: list[int], cmax: int, like: torch.Tensor) -> torch.Tensor:
        return to_device([count < cmax for count in in_a_row], like)

    def _prediction_gaps(self, k: int, columns: int) -> torch.Tensor:
        """The error estimate at step k's σ per row (mean over cond chunks; the batch's mean when
        the batch decides as one)."""
        sigma = self.trace.steps[k].sigma
        device = self.d_history.device
        gaps = torch.stack([torch.stack([prediction_gap(points, sigma).to(device)
                                         for points in self.cache.points_at(0, row)] or
                                        [torch.zeros((), device=device)]).mean()
                            for row in range(self.rows)])
        return gaps if columns == self.rows else gaps.mean().reshape(1)

    def _stop_after_rhythm_change(self, step: int) -> None:
        tail = self.clock.protected_tail(self.config.keep_last_steps)
        if step < self.total_steps - tail:
            self.disable_skipping(f"the sampler changed its rhythm of model calls at step {step}; "
                                  "later steps were computed")
        self.skipping_allowed = False  # in the protected tail: expected, nothing to report

    def _row_skipped(self, k: int, row: int) -> bool:
        return row < len(self.skip[k]) and self.skip[k][row]

    def _step_computed(self, k: int) -> bool:
        return not self.skip[k] or not all(self.skip[k])

    # -- the noise cache ------------------------------------------------------------------------
    def _rows_to_compute(self, position: EvalPosition | None, x: torch.Tensor, keys) -> list[int]:
        rows = x.shape[0] // len(keys)
        if position is None or not self.skipping_allowed or position.step >= self.total_steps \
                or rows != self.rows:
            return list(range(rows))
        return [row for row in range(rows)
                if not self._row_skipped(position.step, row)
                or not all(self.cache.can_answer((key, position.slot, row), x[c * rows + row:c * rows + row + 1])
                           for c, key in enumerate(keys))]

    def _answer_from_cache(self, position: EvalPosition, x, sigma, keys, only_rows=None) -> torch.Tensor:
        """x̂0 for every chunk and row from the cache; rows in `only_rows` are left as x (to fill)."""
        rows = x.shape[0] // len(keys)
        parts = []
        for chunk, key in enumerate(keys):
            for row in range(rows):
                i = chunk * rows + row
                cache_key = (key, position.slot, row)
                if only_rows is not None and row in only_rows or not self.cache.can_answer(cache_key, x[i:i + 1]):
                    parts.append(x[i:i + 1, :self._out_channels(keys, position, x)].clone())
                else:
                    parts.append(self.cache.answer(cache_key, x[i:i + 1], sigma[i:i + 1],
                                                   self.cache.output_channels(cache_key)))
        return torch.cat(parts)

    def _store(self, position: EvalPosition, x, out, sigma, keys, rows_computed: list[int]) -> None:
        rows = x.shape[0] // len(keys)
        for chunk, key in enumerate(keys):
            for row in rows_computed:
                i = chunk * rows + row
                if float(sigma[i]) <= 0:
                    continue  # ε = (x - x̂0)/σ is undefined at σ = 0
                eps = implied_noise(x[i:i + 1], out[i:i + 1], sigma[i:i + 1])
                self.cache.store((key, position.slot, row), sigma[i:i + 1], eps, position.index)

    def _out_channels(self, keys, position: EvalPosition, x) -> int:
        for key in keys:
            cache_key = (key, position.slot, 0)
            if self.cache.can_answer(cache_key, x[:1]):
                return self.cache.output_channels(cache_key)
        return x.shape[1]
