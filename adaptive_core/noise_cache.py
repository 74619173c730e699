"""The noise cache: what a skipped model call returns.

ComfyUI's model call returns the denoised estimate x̂0. For every computed call we keep, per cond
chunk, the implied noise ε = (x - x̂0) / σ (for flow models this is the velocity), and a skipped
call at (x', σ') answers x̂0' = x' - σ' ε̂, where ε̂ is

    hold:       ε̂ = ε_1                                   (the paper's reuse)
    linear:     ε̂ = ε_1 + (ε_1 - ε_0) (σ - σ_1) / (σ_1 - σ_0)
    quadratic:  ε̂ = linear + (D_1 - D_0) / (σ_1 - σ_m) · (σ - σ_1)(σ - σ_0),
                D_1 = (ε_1 - ε_0) / (σ_1 - σ_0),  D_0 = (ε_0 - ε_m) / (σ_0 - σ_m)

from the last three computed points (σ_m, ε_m), (σ_0, ε_0), (σ_1, ε_1), newest last, falling
back to the lower order while fewer points exist or where two σ are (nearly) equal. σ is per
batch row, and so is that fallback: it is decided on the device (torch.where), never by reading
σ back to the host, so answering a call costs no host sync.

A point holds a whole chunk (all its batch rows) when the decision was shared; with per-sample
decisions a call may compute only some rows, and its point then covers just those rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Hashable, NamedTuple, Sequence

import torch

from .config import NOISE_REUSE_MODES
from .metrics import row_relative

POINTS_NEEDED = {"hold": 1, "linear": 2, "quadratic": 3}
# Two σ closer than this (relative) count as one: repeated karras tail values, churn's σ_hat next
# to σ. Dividing by their difference would amplify the model's noise into the extrapolation.
SAME_SIGMA_RTOL = 1e-3
MAX_POINTS = 32  # per key; only reached if some row stopped being computed (never expected)


class Prediction(Enum):
    """What a skipped call's answer is extrapolated from."""
    NOISE = "noise"        # ε = (x - x̂0) / σ; the answer is x - σ ε̂ (the paper's reuse, extrapolated)
    # x̂0 itself; the answer is x̂0 extrapolated. For samplers that add fresh noise to x every step
    # (ancestral, SDE): the implied ε jumps with that noise while x̂0 moves smoothly.
    DENOISED = "denoised"


class CacheKey(NamedTuple):
    """Where a computed call's noise is filed, and which filed noise answers a skipped call."""
    chunk: Hashable  # the cond chunk: (cond_or_uncond, its uuid)
    call: int        # the chunk's call within the evaluation (guidance nodes call a cond twice)
    slot: int        # the evaluation's position within its step (0: the step's first call)


@dataclass
class NoisePoint:
    sigma: torch.Tensor  # per covered row, shaped to broadcast against value
    # What is extrapolated, float32, one row per covered row: the noise ε = (x - x̂0) / σ, or with
    # Prediction.DENOISED (samplers that add noise to x every step) the denoised x̂0 itself.
    value: torch.Tensor
    evaluation: int | None = None  # the run's evaluation that produced it (None: not filed by one)
    rows: tuple[int, ...] | None = None  # the chunk rows it covers; None: all of them

    def covers(self, row: int) -> bool:
        return self.rows is None or row in self.rows


def row_sigma(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """σ as a float32 column [B, 1, 1, ...] that broadcasts over a latent chunk."""
    sigma = sigma.reshape(-1).float()
    if sigma.numel() == 1:
        sigma = sigma.expand(like.shape[0])
    return sigma.reshape([like.shape[0]] + [1] * (like.dim() - 1))


def implied_noise(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """ε = (x - x̂0) / σ, on the output's channels (image-to-video inputs may carry more).

    Rows at σ = 0 (where no ε exists) get ε = 0, decided on the device.
    """
    x = x[:, : denoised.shape[1]]
    sig = row_sigma(sigma, denoised)
    positive = sig > 0
    eps = (x.float() - denoised.float()) / torch.where(positive, sig, torch.ones_like(sig))
    return torch.where(positive, eps, torch.zeros_like(eps))


def _distinct(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per row: σ a and b are far enough apart to divide by their difference."""
    return (a - b).abs() > SAME_SIGMA_RTOL * torch.maximum(a.abs(), b.abs())


def _safe(gap: torch.Tensor, usable: torch.Tensor) -> torch.Tensor:
    return torch.where(usable, gap, torch.ones_like(gap))


def extrapolate(points: Sequence[NoisePoint], sigma: torch.Tensor, mode: str) -> torch.Tensor:
    """ε̂ at σ from the newest points (newest last, all covering the same rows), in `mode`."""
    if mode not in NOISE_REUSE_MODES:
        raise ValueError(f"unknown noise_reuse mode {mode!r}")
    points = list(points)[-POINTS_NEEDED[mode]:]
    p1 = points[-1]
    if len(points) < 2:
        return p1.value
    p0 = points[-2]
    usable1 = _distinct(p1.sigma, p0.sigma)
    slope1 = (p1.value - p0.value) / _safe(p1.sigma - p0.sigma, usable1)
    linear = torch.where(usable1, p1.value + slope1 * (sigma - p1.sigma), p1.value)
    if len(points) < 3:
        return linear
    pm = points[-3]
    usable0 = usable1 & _distinct(p0.sigma, pm.sigma) & _distinct(p1.sigma, pm.sigma)
    slope0 = (p0.value - pm.value) / _safe(p0.sigma - pm.sigma, usable0)
    curve = (slope1 - slope0) / _safe(p1.sigma - pm.sigma, usable0) * (sigma - p1.sigma) * (sigma - p0.sigma)
    return torch.where(usable0, linear + curve, linear)


def prediction_gap(points: Sequence[NoisePoint], sigma: float) -> torch.Tensor:
    """The embedded error estimate per row: |ε̂_quadratic(σ) - ε̂_linear(σ)| / |ε_newest| from the
    newest points (oldest first, all covering the same rows); 0 with fewer than three points or
    coinciding σ, where the quadratic falls back to the linear prediction."""
    if not points:
        return torch.zeros(1)
    gap = extrapolate(points, sigma, "quadratic") - extrapolate(points, sigma, "linear")
    return torch.nan_to_num(row_relative(gap, points[-1].value), nan=0.0, posinf=0.0)


class NoiseCache:
    """The last computed noise points per CacheKey."""

    def __init__(self, mode: str, prediction: Prediction = Prediction.NOISE):
        self.mode = mode
        self.prediction = prediction
        self.needed = POINTS_NEEDED[mode]
        self.kept = self.needed  # points kept per key: what the answer needs, or the error estimate
        # One spare point while the sampler's rhythm is unknown: a point filed under a
        # provisional slot may still be moved (see move_to_slot). drop_spare() once it is known.
        self.depth = self.kept + 1
        self._points: dict[CacheKey, list[NoisePoint]] = {}
        self._chunk_rows: dict[CacheKey, int] = {}

    def predict_denoised(self) -> None:
        """Extrapolate x̂0 instead of the noise (a sampler that adds noise every step), and the
        default quadratic mode linearly: x̂0 extrapolated linearly in σ scored at or above quadratic
        on 11 of 12 rows of bench/stochastic.py, up to +5 dB (the quadratic term amplifies the
        fresh noise's trace in x̂0). The three points the error estimate compares stay kept."""
        self.prediction = Prediction.DENOISED
        self.extrapolate_linearly()
        self.kept = POINTS_NEEDED["quadratic"]
        self.depth = self.kept + 1

    def extrapolate_linearly(self) -> None:
        """The default quadratic mode answers with the linear extrapolation; the error estimate
        keeps comparing the two (its three points stay kept). A user's hold / linear is kept. Called
        before the run files any point (a run's start, or its sampler's)."""
        if self.mode == "quadratic":
            self.mode, self.needed = "linear", POINTS_NEEDED["linear"]
            self.kept = POINTS_NEEDED["quadratic"]
            self.depth = self.kept + 1

    def value_of(self, x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """What a computed call files (ε, or x̂0 with Prediction.DENOISED), float32."""
        if self.prediction is Prediction.DENOISED:
            return denoised.float()
        return implied_noise(x, denoised, sigma)

    def store(self, key: CacheKey, sigma: torch.Tensor, value: torch.Tensor, evaluation: int,
              rows: Sequence[int] | None = None, chunk_rows: int | None = None) -> None:
        """File value_of() of the chunk's `rows` (None: all rows; value and sigma hold just those rows)."""
        point = NoisePoint(row_sigma(sigma, value), value, evaluation, None if rows is None else tuple(rows))
        points = self._points.setdefault(key, [])
        if points and points[-1].value.shape[1:] != value.shape[1:]:
            points.clear()  # the latent's shape changed: older points cannot be combined with it
        points.append(point)
        self._chunk_rows[key] = chunk_rows if chunk_rows is not None else \
            (value.shape[0] if rows is None else self._chunk_rows.get(key, max(rows) + 1))
        self._prune(key)

    def _prune(self, key: CacheKey) -> None:
        points = self._points[key]
        if all(p.rows is None for p in points[-self.depth:]):
            del points[:-self.depth]
            return
        rows = range(self._chunk_rows[key])
        while len(points) > self.depth and (len(points) > MAX_POINTS or all(
                sum(p.covers(row) for p in points[1:]) >= self.depth for row in rows)):
            points.pop(0)

    def can_answer(self, key: CacheKey, x: torch.Tensor, rows: Sequence[int] | None = None) -> bool:
        """Points exist for these rows of the chunk x (None: all) and fit it (same rows and size,
        no more channels). Shapes only: no host sync."""
        points = self._points.get(key)
        if not points:
            return False
        newest = points[-1].value
        if not (newest.dim() == x.dim() and self._chunk_rows[key] == x.shape[0]
                and newest.shape[2:] == x.shape[2:] and newest.shape[1] <= x.shape[1]):
            return False
        if all(p.rows is None for p in points[-1:]):
            return True
        wanted = range(x.shape[0]) if rows is None else rows
        return all(any(p.covers(row) for p in points) for row in wanted)

    def answer(self, key: CacheKey, x: torch.Tensor, sigma: torch.Tensor, out_channels: int | None = None,
               rows: Sequence[int] | None = None) -> torch.Tensor:
        """x̂0 = x - σ ε̂ for the chunk x (or only its `rows`), in x's dtype, on the output's channels."""
        points = self._points[key]
        x = x[:, :out_channels or points[-1].value.shape[1]]
        sig = row_sigma(sigma, x)
        if all(p.rows is None for p in points[-self.needed:]):  # every row has the same history
            predicted = extrapolate(points, sig, self.mode)
            if rows is not None:
                index = torch.tensor(list(rows), device=x.device)
                x, sig, predicted = x.index_select(0, index), sig.index_select(0, index), predicted.index_select(0, index)
            return self._denoised(x, sig, predicted).to(x.dtype)
        return self._answer_by_history(points, x, sig, range(x.shape[0]) if rows is None else rows)

    def _answer_by_history(self, points, x, sig, rows: Sequence[int]) -> torch.Tensor:
        """Per-sample case: rows whose last points differ are extrapolated group by group."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for row in rows:
            history = [i for i, p in enumerate(points) if p.covers(row)][-self.needed:]
            groups.setdefault(tuple(history), []).append(row)
        out = torch.empty((len(rows),) + tuple(x.shape[1:]), dtype=x.dtype, device=x.device)
        place = {row: i for i, row in enumerate(rows)}
        for history, members in groups.items():
            index = torch.tensor(members, device=x.device)
            chosen = [self._rows_of(points[i], members, x.device) for i in history]
            predicted = extrapolate(chosen, sig.index_select(0, index), self.mode)
            value = self._denoised(x.index_select(0, index), sig.index_select(0, index), predicted)
            out.index_copy_(0, torch.tensor([place[r] for r in members], device=x.device), value.to(x.dtype))
        return out

    def _denoised(self, x: torch.Tensor, sig: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
        """A skipped call's x̂0 (float32) from what was extrapolated for it."""
        if self.prediction is Prediction.DENOISED:
            return predicted
        return x.float() - sig * predicted

    @staticmethod
    def _rows_of(point: NoisePoint, rows: list[int], device) -> NoisePoint:
        positions = rows if point.rows is None else [point.rows.index(r) for r in rows]
        index = torch.tensor(positions, device=device)
        return NoisePoint(point.sigma.index_select(0, index), point.value.index_select(0, index), point.evaluation)

    def newest_points(self, slot: int) -> list[list[NoisePoint]]:
        """Read-only, for the decision's error estimate: each chunk key's newest points at this
        evaluation slot, oldest first."""
        return [points[-POINTS_NEEDED["quadratic"]:] for key, points in self._points.items()
                if key.slot == slot and points]

    @staticmethod
    def points_of_row(points: Sequence[NoisePoint], row: int) -> list[NoisePoint]:
        """The points that cover one chunk row, narrowed to it (per-sample histories differ)."""
        return [NoiseCache._rows_of(p, [row], p.value.device) for p in points if p.covers(row)]

    def backtest(self, target: CacheKey, source: CacheKey) -> torch.Tensor | None:
        """How far `source`'s points older than `target`'s newest point would have answered that
        point: |ε̂ - ε| / |ε| per row (whole-chunk points only; None without them). No host sync."""
        targets, sources = self._points.get(target), self._points.get(source)
        if not targets or not sources or targets[-1].rows is not None:
            return None
        newest = targets[-1]
        older = [p for p in sources if p.evaluation < newest.evaluation and p.rows is None]
        if not older:
            return None
        eps = extrapolate(older[-self.needed:], newest.sigma, self.mode)
        return row_relative(eps - newest.value, newest.value)

    def keys_at_slot(self, slot: int) -> list[CacheKey]:
        return [key for key in self._points if key.slot == slot]

    def output_channels(self, key: CacheKey) -> int:
        return self._points[key][-1].value.shape[1]

    def move_to_slot(self, evaluation: int, slot: int) -> None:
        """File the points of `evaluation` under `slot`: its slot was provisional until the
        sampler's callback placed it in its step."""
        for key in list(self._points):
            points = self._points[key]
            if points and points[-1].evaluation == evaluation:
                new_key = key._replace(slot=slot)
                if new_key != key:
                    point = points.pop()
                    self._points.setdefault(new_key, []).append(point)
                    self._chunk_rows.setdefault(new_key, self._chunk_rows[key])
                    self._prune(new_key)

    def drop_spare(self) -> None:
        """The sampler's rhythm is known: no point moves any more, keep only what is needed."""
        if self.depth != self.kept:
            self.depth = self.kept
            for key in self._points:
                self._prune(key)

    def clear(self) -> None:
        self._points.clear()
        self._chunk_rows.clear()
