"""Routing one batched model call: which rows the model computes, which the noise cache answers.

noise_cache.py holds the noise and its extrapolation; this splits a call into its cond chunks
(equal parts, one per cond) and rows, answers the skipped ones and files what was computed.
Nothing here reads a tensor back to the host: rows and shapes are host facts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Hashable, Sequence

import torch

from .noise_cache import CacheKey, NoiseCache

RowsCompute = Callable[[list[int]], torch.Tensor]  # computes the given rows of the batched call


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

    def call_keys(self, chunks: Sequence[Hashable], slot: int) -> list[CacheKey]:
        """The cache keys of a call's chunks at this evaluation slot."""
        keys = []
        for chunk in chunks:
            call = self.seen.get(chunk, 0)
            self.seen[chunk] = call + 1
            keys.append(CacheKey(chunk, call, slot))
        return keys

    def computed(self, rows: Sequence[int], chunks: int) -> None:
        self.model_calls += 1
        self.rows_sent += len(rows) * chunks
        self.rows_run.update(rows)


def sigma_per_row(sigma: torch.Tensor, rows: int) -> torch.Tensor:
    """The call's σ, one value per row of the batched call (the host may send one for all)."""
    sigma = sigma.reshape(-1)
    return sigma.expand(rows) if sigma.numel() == 1 else sigma


class CallRouter:
    """Splits calls between the model and the noise cache, per cond chunk and row."""

    def __init__(self, cache: NoiseCache):
        self.cache = cache
        # A step's first call (slot 0) is answered from this slot's noise when set: heun's
        # corrector call of the step before is at this very σ (DecisionState.reuse_slot).
        self.first_call_slot: int | None = None

    def answer_key(self, key: CacheKey) -> CacheKey:
        if self.first_call_slot is None or key.slot != 0:
            return key
        return key._replace(slot=self.first_call_slot)

    def rows_to_compute(self, x: torch.Tensor, keys: Sequence[CacheKey], skipped: Sequence[int]) -> list[int]:
        """The rows of each chunk the model must compute: all but the skipped rows the cache can answer."""
        rows = x.shape[0] // len(keys)
        everything = list(range(rows))
        keys = [self.answer_key(key) for key in keys]
        chunk = x[:rows]
        if len(skipped) == rows and all(self.cache.can_answer(key, chunk) for key in keys):
            return []  # the common case: the whole call is answered from the cache
        return [row for row in everything if row not in skipped
                or not all(self.cache.can_answer(key, chunk, (row,)) for key in keys)]

    def answer(self, x: torch.Tensor, sigma: torch.Tensor, keys: Sequence[CacheKey],
               fill_rows: list[int] | None = None) -> torch.Tensor:
        """x̂0 for every chunk from the cache, whole chunks at a time; rows in `fill_rows` are
        left as x (the caller computes them)."""
        rows = x.shape[0] // len(keys)
        keys = [self.answer_key(key) for key in keys]
        sigma = sigma_per_row(sigma, x.shape[0])
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

    def store(self, evaluation: int, x: torch.Tensor, out: torch.Tensor, sigma: torch.Tensor,
              keys: Sequence[CacheKey], computed: list[int]) -> None:
        """File the computed rows' ε (or x̂0), one tensor operation for the whole call."""
        rows = x.shape[0] // len(keys)
        sigma = sigma_per_row(sigma, x.shape[0])
        eps = self.cache.value_of(x, out, sigma)  # ε = 0 where σ = 0: never read (final steps compute)
        whole = len(computed) == rows
        picked = None if whole else torch.tensor(computed, device=x.device)
        for chunk, key in enumerate(keys):
            chunk_eps, chunk_sigma = eps[chunk * rows:(chunk + 1) * rows], sigma[chunk * rows:(chunk + 1) * rows]
            if whole:
                self.cache.store(key, chunk_sigma, chunk_eps, evaluation, chunk_rows=rows)
            else:
                self.cache.store(key, chunk_sigma.index_select(0, picked.to(chunk_sigma.device)),
                                 chunk_eps.index_select(0, picked), evaluation, rows=computed, chunk_rows=rows)

    def _out_channels(self, keys: Sequence[CacheKey], chunk: torch.Tensor) -> int:
        for key in keys:
            if self.cache.can_answer(key, chunk):
                return self.cache.output_channels(key)
        return chunk.shape[1]

    def clear(self) -> None:
        self.cache.clear()
        self.first_call_slot = None
