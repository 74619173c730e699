"""All state of one sampler run, created at its start and dropped at its end.

A host drives it through three events:
  begin_evaluation(x, σ)  once per model evaluation, with the full latent (decides skips),
  on_step(k)              when the sampler reports step k (its progress callback),
  model_call(...)         for each batched model call of the evaluation (skips or computes).
"""
from __future__ import annotations

import threading
from typing import Callable, Hashable, Sequence

import torch

from .config import AdaptiveConfig
from .criterion import criterion_value, mean_abs_change, should_skip
from .noise_cache import NoiseCache, implied_noise
from .step_clock import EvalPosition, StepClock
from .trace import AdaptiveTrace, StepRecord


class AdaptiveRun:
    def __init__(self, config: AdaptiveConfig, sigmas: Sequence[float], label: str = "",
                 skip_path: Sequence[bool] | None = None):
        """skip_path: follow this mask (True = skip step k) instead of the criterion."""
        self.config = config
        self.skip_path = None if skip_path is None else [bool(s) for s in skip_path]
        sigmas = [float(s) for s in sigmas]
        self.trace = AdaptiveTrace(config, [StepRecord(k, s) for k, s in enumerate(sigmas[:-1])], label)
        self.clock = StepClock()
        self.cache = NoiseCache(config.noise_reuse)
        self.d: list[float | None] = [None] * self.total_steps
        self.skip: list[bool] = [False] * self.total_steps
        self.step_inputs: dict[int, torch.Tensor] = {}  # first-evaluation input of recent steps
        self.skipped_in_a_row = 0
        self.current: EvalPosition | None = None
        self.latest_input: torch.Tensor | None = None
        self.calls_by_eval: list[list[int]] = []  # [model calls, cached calls] per evaluation
        self.skipping_allowed = config.enabled or self.skip_path is not None
        self._lock = threading.Lock()

    @property
    def total_steps(self) -> int:
        return len(self.trace.steps)

    def disable_skipping(self, reason: str) -> None:
        if self.skipping_allowed:
            self.skipping_allowed = False
            self.trace.notes.append(reason)

    # -- events -------------------------------------------------------------------------------
    def begin_evaluation(self, x: torch.Tensor) -> None:
        with self._lock:
            position = self.clock.next_evaluation()
            self.current = position
            self.calls_by_eval.append([0, 0])
            self.latest_input = x.detach().clone()
            if position.predicted_start and position.step < self.total_steps:
                self._start_step(position.step, self.latest_input, decide=True)

    def on_step(self, step: int) -> None:
        with self._lock:
            moved = self.clock.on_callback(step)
            for position in moved:
                self.cache.retag(position.index, lambda key, p=position: (key[0], p.slot))
            if self.clock.broken:
                self._stop_after_rhythm_change(step)
            if 0 <= step < self.total_steps and step not in self.step_inputs \
                    and self.latest_input is not None:
                self._start_step(step, self.latest_input, decide=False)

    def model_call(self, compute: Callable[[], torch.Tensor], x: torch.Tensor, sigma: torch.Tensor,
                   chunk_keys: Sequence[Hashable]) -> torch.Tensor:
        """Answer one batched model call (chunks of equal size, one per key) or compute it."""
        with self._lock:
            position = self.current
            if position is not None and self._should_answer_from_cache(position, x, chunk_keys):
                out = self._answer_from_cache(position, x, sigma, chunk_keys)
                self.calls_by_eval[position.index][1] += 1
                return out
        out = compute()
        with self._lock:
            if position is not None:
                self.calls_by_eval[position.index][0] += 1
                if self.skipping_allowed and position.step < self.total_steps:
                    self._store(position, x, out, sigma, chunk_keys)
        return out

    def finish(self) -> AdaptiveTrace:
        """Fill the per-step call counts and drop every tensor; the trace is all that remains."""
        with self._lock:
            last = self.total_steps - 1
            for position, (calls, cached) in zip(self.clock.positions, self.calls_by_eval):
                if last >= 0:  # samplers with their own steps may call past the schedule
                    self.trace.steps[min(position.step, last)].model_calls += calls
                    self.trace.steps[min(position.step, last)].cached_calls += cached
            for k, record in enumerate(self.trace.steps):
                record.d = self.d[k]
                record.criterion = criterion_value(self.d, k)
                record.computed = not self.skip[k]
            self.cache.clear()
            self.step_inputs.clear()
            self.latest_input = None
            self.current = None
            return self.trace

    def live_mask(self, upto: int) -> str:
        """Steps so far: "1" computed, "0" skipped, "." not reached (for the live UI)."""
        with self._lock:
            return "".join("." if k > upto else ("0" if self.skip[k] else "1")
                           for k in range(self.total_steps))

    # -- internals ----------------------------------------------------------------------------
    def _stop_after_rhythm_change(self, step: int) -> None:
        tail = self.clock.protected_tail(self.config.keep_last_steps)
        if step < self.total_steps - tail:
            self.disable_skipping(f"the sampler changed its rhythm of model calls at step {step}; "
                                  "later steps were computed")
        self.skipping_allowed = False  # in the protected tail: expected, nothing to report

    def _start_step(self, k: int, x: torch.Tensor, decide: bool) -> None:
        previous = self.step_inputs.get(k - 1)
        if previous is not None and previous.shape == x.shape:
            self.d[k] = mean_abs_change(x, previous)
        self.step_inputs = {k: x}
        if decide and self.skipping_allowed:
            self.skip[k] = self._decide(k)
        self.skipped_in_a_row = self.skipped_in_a_row + 1 if self.skip[k] else 0

    def _decide(self, k: int) -> bool:
        if self.skip_path is not None:  # a replayed path: only the sampler's rhythm limits it
            tail = self.clock.protected_tail(0)
            return k < len(self.skip_path) and self.skip_path[k] and k < self.total_steps - tail
        tail = self.clock.protected_tail(self.config.keep_last_steps)
        return should_skip(self.d, k, self.total_steps, self.skipped_in_a_row, self.config,
                           protected_tail=tail)

    def _should_answer_from_cache(self, position: EvalPosition, x: torch.Tensor, keys) -> bool:
        if not self.skipping_allowed or position.step >= self.total_steps or not self.skip[position.step]:
            return False
        return all(self.cache.can_answer((key, position.slot), chunk)
                   for key, chunk in zip(keys, x.chunk(len(keys))))

    def _answer_from_cache(self, position: EvalPosition, x, sigma, keys) -> torch.Tensor:
        parts = []
        for key, chunk, sig in zip(keys, x.chunk(len(keys)), sigma.chunk(len(keys))):
            cache_key = (key, position.slot)
            parts.append(self.cache.answer(cache_key, chunk, sig, self.cache.output_channels(cache_key)))
        return torch.cat(parts)

    def _store(self, position: EvalPosition, x, out, sigma, keys) -> None:
        if bool((sigma <= 0).any()):
            return  # ε = (x - x̂0)/σ is undefined at σ = 0
        for key, chunk, denoised, sig in zip(keys, x.chunk(len(keys)), out.chunk(len(keys)),
                                            sigma.chunk(len(keys))):
            self.cache.store((key, position.slot), sig, implied_noise(chunk, denoised, sig), position.index)
