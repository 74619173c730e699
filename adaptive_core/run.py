"""One sampler run, driven by the host's events in the order the host makes them.

  begin_evaluation(x)    once per model evaluation, with the full latent (a step's decision),
  on_step(k)             when the sampler reports step k (its progress callback),
  model_call(...)        for each batched model call of the evaluation (skipped or computed),
  end_evaluation(x, x̂0)  with the guided result (corrects the step after a skip),
  finish()               at the end, always: fills the trace and drops every tensor.

The jobs live beside it: step_clock.py (which evaluation is which step), decision_state.py over
decision.py (the decision), call_routing.py over noise_cache.py (a call to cache or model),
correction.py, trace.py. This class keeps the host's order; a lock makes it thread-safe.
"""
from __future__ import annotations

import threading
from typing import Callable, Hashable, Sequence

import torch

from .call_routing import CallRouter, EvalCalls, RowsCompute
from .config import AdaptiveConfig
from .correction import SkipCorrection
from .decision import ScheduleStage
from .decision_state import DecisionState
from .noise_cache import CacheKey, NoiseCache
from .samplers import ONE_CALL_A_STEP, SamplerNoise, sampler_noise, unskipped_reason
from .step_clock import EvalPosition, StepClock
from .trace import (WRAPPER_NEVER_RAN, AdaptiveTrace, CallCount, StepRecord, outcome_notes, record_calls,
                    record_steps)

__all__ = ["AdaptiveRun", "RowsCompute", "WRAPPER_NEVER_RAN"]


class AdaptiveRun:
    def __init__(self, config: AdaptiveConfig, sigmas: Sequence[float], label: str = "",
                 skip_path: Sequence[bool] | None = None, forced_plan: Sequence[bool] | None = None,
                 stage: ScheduleStage | None = None, skip_brownian: bool = False, flow_matching: bool = False):
        """skip_path: follow this mask (True = skip step k) instead of the criterion; forced_plan:
        with a speed, this mask instead of its plan (refusals and the correction still act);
        stage: where these steps sit in a schedule another sampler node shares (a speed plans
        the whole); skip_brownian: skip Brownian-path samplers too (what bench/stochastic.py measures);
        flow_matching: the model predicts a flow velocity (its implied noise), which the default
        quadratic mode extrapolates linearly (NoiseCache.extrapolate_linearly)."""
        if forced_plan is not None and (config.speed_factor is None or skip_path is not None):
            raise ValueError("forced_plan replaces a speed's plan: it needs a speed and no skip_path")
        self.config, self.skip_brownian = config, skip_brownian
        self.sigmas = [float(s) for s in sigmas]
        self.trace = AdaptiveTrace(config, [StepRecord(k, s) for k, s in enumerate(self.sigmas[:-1])], label)
        self.clock = StepClock()
        self.router = CallRouter(NoiseCache(config.noise_reuse))
        if flow_matching:
            # A flow's velocity is near constant along its paths: the quadratic term mostly adds the
            # model's jitter, multiplied by the guidance scale. On the flow reference model linear
            # scored above quadratic in 35 of 42 cells of bench/peers.py (peers_summary.md at
            # e27be68), and on bench/flow_graphs.py it lifted the 20-step rows by +3 to +9 dB
            # (uni_pc, cfg 4-6), for up to -3 dB on 25-30 step rows that keep +14 dB or more.
            self.router.cache.extrapolate_linearly()
        # With a speed, the computed step after a skip corrects it (correction.py).
        self.correction = SkipCorrection() if config.speed_factor is not None and skip_path is None else None
        self.decisions = DecisionState(config, self.sigmas, self.clock, self.router.cache, self.correction,
                                       self.trace.notes.append, skip_path, forced_plan, stage, flow_matching)
        if self.decisions.stage is not None:
            self.trace.stage = (self.decisions.stage.start, self.decisions.stage.total_steps)
        self.calls_by_eval: list[EvalCalls] = []  # by evaluation index
        self.current: EvalPosition | None = None
        self.latest_input: torch.Tensor | None = None
        self.skipping_allowed = config.enabled or skip_path is not None
        self._lock = threading.Lock()
        if self.skipping_allowed and 0 < self.total_steps <= config.warmup_steps:
            # A 1-4 step Turbo/LCM/Lightning graph: a drop-in KSampler runs it, unskipped.
            self.disable_skipping(f"only {self.total_steps} steps, not more than warmup_steps "
                                  f"({config.warmup_steps}): ran unskipped")

    def __deepcopy__(self, memo):  # a pack deep-copying model_options mid-run gets this run, not half of it
        return self

    @property
    def total_steps(self) -> int:
        return len(self.trace.steps)

    @property
    def per_sample(self) -> bool:
        return self.decisions.per_sample

    def disable_skipping(self, reason: str) -> None:
        if self.skipping_allowed:
            self.skipping_allowed = False
            self.trace.notes.append(reason)

    def fall_back_to_batch_decisions(self, reason: str) -> None:
        if self.decisions.per_sample:
            self.decisions.per_sample = False
            self.trace.notes.append(f"per-sample decisions off: {reason}")

    # -- events -------------------------------------------------------------------------------
    def sampler_started(self, function_name: str) -> None:
        """The sampler, known once sampling starts (samplers.py). Fresh noise every step: a skip
        extrapolates x̂0, uncorrected (no known step form). A Brownian noise path: unskipped, as
        plain fewer steps keeps that path and measured better (bench/stochastic.py)."""
        kind, name = sampler_noise(function_name), function_name.removeprefix("sample_")
        stage = self.decisions.stage
        # a second stage decides from its third step: its clock cannot wait for two equal intervals
        self.clock.quick_start = stage is not None and stage.start > 0 and name in ONE_CALL_A_STEP
        if not self.skipping_allowed or self.config.speed_factor is None:
            return
        with self._lock:
            if unskipped_reason(name) is not None:
                self.disable_skipping(f"{unskipped_reason(name)}: ran unskipped")
                return
            if kind is SamplerNoise.NONE:
                return
            if kind is SamplerNoise.BROWNIAN and not self.skip_brownian:
                self.disable_skipping(f"{name} draws its noise from one Brownian path, which plain fewer steps "
                                      "keeps too; skipping measured no better than fewer steps there: ran unskipped")
                return
            self.router.cache.predict_denoised()
            self.correction = self.decisions.correction = None
            self.trace.notes.append(f"{name} adds new noise every step: a skip extrapolates x̂0 "
                                    f"({self.router.cache.mode} in σ), and the sampler adds its own noise as always")

    def begin_evaluation(self, x: torch.Tensor) -> None:
        with self._lock:
            if not self.decisions.see_batch(x.shape[0]):
                self.disable_skipping("the batch size changed during the run")
            position = self.clock.next_evaluation()
            self.current = position
            self.calls_by_eval.append(EvalCalls())
            # Kept beyond this evaluation only if it starts a step (some samplers update x in
            # place afterwards, e.g. ddpm): once the rhythm is known, only step starts are copied.
            if position.predicted_start or self.clock.period is None or self.clock.broken:
                self.latest_input = x.detach().clone()
            if position.predicted_start and position.step < self.total_steps:
                self._start_step(position.step, decide=True)

    def on_step(self, step: int) -> None:
        with self._lock:
            for position in self.clock.on_callback(step):
                self.router.cache.move_to_slot(position.index, position.slot)
            if self.clock.period is not None:
                self.router.cache.drop_spare()
            if self.clock.broken:
                self._stop_after_rhythm_change(step)
            if self.correction is not None:  # a warm-up step's evaluation, named by this callback
                self.correction.place_warmup(self.clock.evaluations - 1, step, self.sigmas)
            if 0 <= step < self.total_steps and step not in self.decisions.step_inputs \
                    and self.latest_input is not None:
                self._start_step(step, decide=False)

    def model_call(self, compute: Callable[[], torch.Tensor], x: torch.Tensor, sigma: torch.Tensor,
                   chunks: Sequence[Hashable], compute_rows: RowsCompute | None = None) -> torch.Tensor:
        """Answer one batched call (equal chunks, one per cond), computing only what is needed.

        compute_rows(indices) computes a subset of the call's rows; None when the host cannot
        split this call by rows (then a partly skipped call is computed whole).
        """
        with self._lock:
            position = self.current
            calls = None if position is None else self.calls_by_eval[position.index]
            keys = [CacheKey(chunk, 0, 0) for chunk in chunks] if calls is None else \
                calls.call_keys(chunks, position.slot)
            rows = x.shape[0] // len(keys)
            if position is not None:
                self.decisions.note_sigma(position.index, sigma)
            need = self.router.rows_to_compute(x, keys, self._skipped_rows(position, rows))
            if calls is not None and not need:
                calls.cached_calls += 1
                return self.router.answer(x, sigma, keys)
        if len(need) == rows or compute_rows is None:
            out, computed = compute(), list(range(rows))
        else:
            computed = need
            indices = [chunk * rows + row for chunk in range(len(keys)) for row in need]
            with self._lock:
                out = self.router.answer(x, sigma, keys, fill_rows=need)
            out[indices] = compute_rows(indices).to(out.dtype)
        with self._lock:
            if calls is not None:
                calls.computed(computed, len(keys))
                if self.skipping_allowed and position.step < self.total_steps:
                    self.router.store(position.index, x, out, sigma, keys, computed)
        return out

    def end_evaluation(self, x: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
        """The evaluation's guided x̂0, corrected where the step before it was skipped."""
        with self._lock:
            position, rows = self.current, self.decisions.rows
            if self.correction is None or position is None or position.step >= self.total_steps \
                    or (self.clock.period or 1) != 1 or self.clock.broken \
                    or x.shape[0] != rows or denoised.shape[0] != rows:
                return denoised
            if self.clock.period is None and position.index > 0:  # the warm-up: recorded at its callback
                self.correction.hold_warmup(position.index, x, denoised)
                return denoised
            if position.slot != 0:
                return denoised
            calls = self.calls_by_eval[position.index]
            skipped = [row for row in range(rows) if row not in calls.rows_run] if calls.cached_calls else []
            return self.correction.after_evaluation(position.step, x, denoised, self.sigmas, skipped,
                                                    sorted(calls.rows_run))

    def live_mask(self, upto: int) -> str:
        """Steps so far: "1" computed, "0" skipped, "." not reached (for the live UI)."""
        with self._lock:
            computed = self._computed_rows()
            return "".join("." if k > upto else ("1" if any(computed[k]) else "0")
                           for k in range(self.total_steps))

    def finish(self) -> AdaptiveTrace:
        """Fill the trace from what ran, then drop every tensor; the trace is what remains."""
        with self._lock:
            record_calls(self.trace, (CallCount(p.step, c.model_calls, c.cached_calls, c.rows_sent)
                                      for p, c in zip(self.clock.positions, self.calls_by_eval)))
            if self._wrapper_never_ran():
                self.trace.inactive = WRAPPER_NEVER_RAN
            corrected = None if self.correction is None else self.correction.corrected_rows
            batch_d, corrected_rows = self.decisions.read_back(corrected)  # the run's one read at its end
            record_steps(self.trace, batch_d, self._computed_rows(), max(self.decisions.rows, 1))
            self.trace.per_sample = self.decisions.per_sample
            self.trace.kept_last_steps = self.decisions.protected_tail()
            if self.trace.stage is not None:
                self.trace.switch_warmup = self.decisions.switch_warmup
            self.trace.notes.extend(outcome_notes(self.decisions.outcome(corrected_rows)))
            self._reset()
            return self.trace

    # -- bookkeeping ------------------------------------------------------------------------------
    def _start_step(self, k: int, decide: bool) -> None:
        self.decisions.start_step(k, self.latest_input, decide and self.skipping_allowed)
        self.router.first_call_slot = self.decisions.reuse_slot

    def _skipped_rows(self, position: EvalPosition | None, rows: int) -> list[int]:
        """The rows the decision skips in this call; none where skipping is off or the call is
        not one the decision knows (before the first evaluation, past the schedule, a new batch)."""
        if position is None or not self.skipping_allowed or position.step >= self.total_steps \
                or rows != self.decisions.rows:
            return []
        return self.decisions.skipped_rows(position.step, position.slot)

    def _stop_after_rhythm_change(self, step: int) -> None:
        tail = self.clock.protected_tail(self.config.keep_last_steps)
        if step < self.total_steps - tail:
            self.disable_skipping(f"the sampler changed its rhythm of model calls at step {step}; "
                                  "later steps were computed")
        self.skipping_allowed = False  # in the protected tail: expected, nothing to report

    def _wrapper_never_ran(self) -> bool:
        return bool(self.calls_by_eval) and not any(c.model_calls or c.cached_calls for c in self.calls_by_eval)

    def _computed_rows(self) -> list[list[bool]]:
        """Per step, per row: computed. Derived from the calls made, not from the decision: a
        skip the cache could not answer (a cond that starts mid-run, a new shape) was computed."""
        rows = max(self.decisions.rows, 1)
        if self._wrapper_never_ran():
            return [[True] * rows for _ in range(self.total_steps)]
        ran: list[set[int]] = [set() for _ in range(self.total_steps)]
        for position, calls in zip(self.clock.positions, self.calls_by_eval):
            if position.step < self.total_steps:
                ran[position.step] |= calls.rows_run
        return [[not self.decisions.row_skipped(k, row) or row in ran[k] for row in range(rows)]
                for k in range(self.total_steps)]

    def _reset(self) -> None:
        self.decisions.reset()
        self.router.clear()
        if self.correction is not None:
            self.correction.reset()
        self.latest_input = None
        self.current = None
