"""Correcting a skipped step once the computed step after it shows where the noise really went.

A skipped step k moved the latent with extrapolated noise ε̂_k. When step k+1 is computed, the
noise at σ_k can be interpolated instead, between computed calls on both sides of it, which is
far closer than any extrapolation; the latent's error from step k is then known:

    Δ = (σ_(k+1) - σ_k) (ε̂_k - ε̃_k)               for a first-order (Euler/DDIM) step.

The sampler's latent cannot be touched, but its next step can: an Euler/DDIM step
x_(k+2) = A x_(k+1) + (1 - A) x̂0, A = σ_(k+2) / σ_(k+1), lands where it would have landed from
x_(k+1) - Δ when it is handed x̂0' = x̂0 - A Δ / (1 - A). That holds only if the sampler's steps
are Euler steps: checked per row on the step the skip took (x_(k+1) = x_k + (σ_(k+1) - σ_k) ε̂_k),
on the device, without a host read. Rows that fail it (multistep and CFG++ samplers, churn) keep
x̂0 as it is. It works on the guided output (after CFG or any guidance node): that is what moves
the latent. Only the skipped step just before a computed one is corrected: measured on the
reference model, correcting the earlier skips of a run as well was worse (its interpolation spans
a longer gap), and so was keeping ε rather than x̂0 from the call made at the uncorrected latent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from .noise_cache import SAME_SIGMA_RTOL, NoisePoint, extrapolate

EULER_STEP_RTOL = 1e-3  # float32 rounding of an Euler step is ~1e-6 of it; anything else is far above
POINTS_KEPT = 4


@dataclass
class SkippedStep:
    step: int
    rows: list[int]
    x: torch.Tensor    # the latent the skipped step started from
    eps: torch.Tensor  # the guided noise it moved with (extrapolated)


def euler_step_error(x_before: torch.Tensor, x_after: torch.Tensor, eps_used: torch.Tensor,
                     eps_better: torch.Tensor, sigma: float, sigma_next: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(Δ, per-row: the step was an Euler step with eps_used): the latent's error from moving with
    eps_used instead of eps_better from σ to σ_next."""
    step = (sigma_next - sigma) * eps_used
    rows = step.shape[0]
    residual = (x_after - x_before - step).reshape(rows, -1).norm(dim=1)
    is_euler = residual <= EULER_STEP_RTOL * step.reshape(rows, -1).norm(dim=1)
    return (sigma_next - sigma) * (eps_used - eps_better), is_euler


def shifted_denoised(denoised: torch.Tensor, error: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """x̂0 that makes an Euler step from σ to σ_next land as if it started `error` closer."""
    keep = sigma_next / sigma
    return denoised - (keep / (1.0 - keep)) * error


@dataclass
class SkipCorrection:
    """State of one run's corrections: recent computed guided noise and the last skipped step.
    A point's tag is its step, its rows the rows that step computed (None: all)."""
    points: list[NoisePoint] = field(default_factory=list)
    skipped: SkippedStep | None = None
    corrected_rows: torch.Tensor | None = None  # on the device: how many row-steps were corrected

    def reset(self) -> None:
        self.points.clear()
        self.skipped = None
        self.corrected_rows = None

    def after_evaluation(self, step: int, x: torch.Tensor, denoised: torch.Tensor, sigmas: Sequence[float],
                         skipped_rows: list[int], computed_rows: list[int]) -> torch.Tensor:
        """The guided x̂0 of `step`, corrected where the step before it was skipped; records this
        step for the next one."""
        sigma = sigmas[step]
        if sigma <= 0:
            return denoised
        x = x[:, : denoised.shape[1]].float()
        eps = (x - denoised.float()) / sigma
        if computed_rows:
            rows = None if len(computed_rows) == eps.shape[0] else tuple(computed_rows)
            point = NoisePoint(torch.full((), sigma, device=eps.device), eps, step, rows)
            self.points = self.points[-(POINTS_KEPT - 1):] + [point]
        out = denoised
        previous = self.skipped
        if previous is not None and previous.step == step - 1:
            rows = [row for row in computed_rows if row in previous.rows]
            if rows:
                out = self._correct(step, x, denoised, sigmas, previous, rows)
        self.skipped = SkippedStep(step, skipped_rows, x.clone(), eps) if skipped_rows else None
        return out

    def _correct(self, step: int, x: torch.Tensor, denoised: torch.Tensor, sigmas: Sequence[float],
                 skipped: SkippedStep, rows: list[int]) -> torch.Tensor:
        sigma_skipped, sigma, sigma_next = sigmas[step - 1], sigmas[step], sigmas[step + 1]
        if sigma_next <= 0 or sigma - sigma_next <= SAME_SIGMA_RTOL * sigma:
            return denoised  # a last step (x̂0 is the result) or no room to shift through
        out = denoised.clone()
        for group, points in self._groups(rows).items():
            # all rows (the batch decides as one): no index; else the host's row list, sent without waiting
            index = None if len(group) == x.shape[0] else torch.tensor(group).to(x.device, non_blocking=True)
            pick = (lambda t: t) if index is None else (lambda t: t.index_select(0, index))
            # the quadratic through the points, evaluated between them (coinciding σ: lower order)
            interpolated = pick(extrapolate(points, sigma_skipped, "quadratic"))
            error, is_euler = euler_step_error(pick(skipped.x), pick(x), pick(skipped.eps), interpolated,
                                               sigma_skipped, sigma)
            fixed = shifted_denoised(pick(denoised).float(), error, sigma, sigma_next)
            keep = is_euler.reshape([-1] + [1] * (fixed.dim() - 1))
            result = torch.where(keep, fixed, pick(denoised).float()).to(out.dtype)
            out = result if index is None else out.index_copy_(0, index, result)
            count = is_euler.sum()
            self.corrected_rows = count if self.corrected_rows is None else self.corrected_rows + count
        return out

    def _groups(self, rows: list[int]) -> dict[tuple[int, ...], list[NoisePoint]]:
        """Rows grouped by their newest three computed points (one group unless per-sample
        decisions differ); a row needs two."""
        groups: dict[tuple, list[NoisePoint]] = {}
        members: dict[tuple, list[int]] = {}
        for row in rows:
            points = [p for p in self.points if p.covers(row)][-3:]
            steps = tuple(p.tag for p in points)
            groups[steps] = points
            members.setdefault(steps, []).append(row)
        return {tuple(members[steps]): points for steps, points in groups.items() if len(points) >= 2}
