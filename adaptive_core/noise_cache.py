"""The noise cache: what a skipped model call returns.

ComfyUI's model call returns the denoised estimate x̂0. For every computed call we keep, per cond
chunk, the implied noise ε = (x - x̂0) / σ (for flow models this is the velocity), and a skipped
call at (x', σ') answers x̂0' = x' - σ' ε̂, where ε̂ is

    hold:       ε̂ = ε_1                                   (the paper's reuse)
    linear:     ε̂ = ε_1 + (ε_1 - ε_0) (σ - σ_1) / (σ_1 - σ_0)
    quadratic:  ε̂ = linear + (D_1 - D_0) / (σ_1 - σ_m) · (σ - σ_1)(σ - σ_0),
                D_1 = (ε_1 - ε_0) / (σ_1 - σ_0),  D_0 = (ε_0 - ε_m) / (σ_0 - σ_m)

from the last three computed points (σ_m, ε_m), (σ_0, ε_0), (σ_1, ε_1), newest last, falling
back to the lower order while fewer points exist (or when two σ coincide). σ is per batch row.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Hashable

import torch

from .config import NOISE_REUSE_MODES

POINTS_NEEDED = {"hold": 1, "linear": 2, "quadratic": 3}


@dataclass
class NoisePoint:
    sigma: torch.Tensor  # per batch row, shaped to broadcast against eps
    eps: torch.Tensor    # float32
    tag: int             # the evaluation that produced it


def row_sigma(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """σ as a float32 column [B, 1, 1, ...] that broadcasts over a latent chunk."""
    sigma = sigma.reshape(-1).float()
    if sigma.numel() == 1:
        sigma = sigma.expand(like.shape[0])
    return sigma.reshape([like.shape[0]] + [1] * (like.dim() - 1))


def implied_noise(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """ε = (x - x̂0) / σ, on the output's channels (image-to-video inputs may carry more)."""
    x = x[:, : denoised.shape[1]]
    return (x.float() - denoised.float()) / row_sigma(sigma, denoised)


def extrapolate(points: list[NoisePoint], sigma: torch.Tensor, mode: str) -> torch.Tensor:
    """ε̂ at σ from the newest points (newest last), in the given mode."""
    if mode not in NOISE_REUSE_MODES:
        raise ValueError(f"unknown noise_reuse mode {mode!r}")
    points = points[-POINTS_NEEDED[mode]:]
    p1 = points[-1]
    if len(points) < 2 or bool((points[-1].sigma == points[-2].sigma).any()):
        return p1.eps
    p0 = points[-2]
    slope1 = (p1.eps - p0.eps) / (p1.sigma - p0.sigma)
    linear = p1.eps + slope1 * (sigma - p1.sigma)
    if len(points) < 3 or bool((p0.sigma == points[-3].sigma).any()) \
            or bool((p1.sigma == points[-3].sigma).any()):
        return linear
    pm = points[-3]
    slope0 = (p0.eps - pm.eps) / (p0.sigma - pm.sigma)
    return linear + (slope1 - slope0) / (p1.sigma - pm.sigma) * (sigma - p1.sigma) * (sigma - p0.sigma)


class NoiseCache:
    """The last computed noise points per key (a cond chunk in an evaluation slot)."""

    def __init__(self, mode: str):
        self.mode = mode
        # One spare point: a point filed under a provisional slot may be moved (see retag).
        self._depth = POINTS_NEEDED[mode] + 1
        self._points: dict[Hashable, deque[NoisePoint]] = {}

    def store(self, key: Hashable, sigma: torch.Tensor, eps: torch.Tensor, tag: int) -> None:
        point = NoisePoint(row_sigma(sigma, eps), eps, tag)
        self._points.setdefault(key, deque(maxlen=self._depth)).append(point)

    def can_answer(self, key: Hashable, x: torch.Tensor) -> bool:
        """A point exists for this key and fits this chunk (same rows and size, no more channels)."""
        points = self._points.get(key)
        if not points:
            return False
        eps = points[-1].eps
        return (eps.dim() == x.dim() and eps.shape[0] == x.shape[0] and eps.shape[2:] == x.shape[2:]
                and eps.shape[1] <= x.shape[1])

    def answer(self, key: Hashable, x: torch.Tensor, sigma: torch.Tensor, out_channels: int) -> torch.Tensor:
        """x̂0 = x - σ ε̂ for one chunk, in x's dtype, on the output's channels."""
        x = x[:, :out_channels]
        sig = row_sigma(sigma, x)
        eps = extrapolate(list(self._points[key]), sig, self.mode)
        return (x.float() - sig * eps).to(x.dtype)

    def points_at(self, slot: int, row: int) -> list[list[NoisePoint]]:
        """Read-only: the stored points of every cond chunk at this slot and batch row, oldest
        first (keys are (chunk key, slot, row)), for the decision's error estimate."""
        return [list(points) for key, points in self._points.items() if key[1:] == (slot, row)]

    def output_channels(self, key: Hashable) -> int:
        return self._points[key][-1].eps.shape[1]

    def retag(self, tag: int, move_key) -> None:
        """Move the points of evaluation `tag` to the keys `move_key(old_key)` (slot fixed later)."""
        for key in list(self._points):
            points = self._points[key]
            if points and points[-1].tag == tag:
                new_key = move_key(key)
                if new_key != key:
                    point = points.pop()
                    self._points.setdefault(new_key, deque(maxlen=self._depth)).append(point)

    def clear(self) -> None:
        self._points.clear()
