"""Correcting a skipped step once the computed step after it shows where the noise really went.

A skipped step k moved the latent with an extrapolated x̂0 (D̂_k). When step k+1 is computed, the
noise at σ_k can be interpolated instead, between computed calls on both sides of it, which is far
closer than any extrapolation; its x̂0 D̃_k and the error it left in the latent are then known:

    Δ = (1 - A_k) (D̂_k - D̃_k),   A_k = σ_(k+1) / σ_k          (= (σ_(k+1) - σ_k)(ε̂_k - ε̃_k)).

The sampler's latent cannot be touched, but its next step can, for samplers whose step is linear
in x̂0 with at most one past value:

    x_(k+1) = A_k x_k + (1 - A_k) ((1 + c_k) D_k - c_k D_(k-1)),

Euler and DDIM with c = 0, DPM-Solver++(2M) with c = 1 / (2 r), r the ratio of its last two
log-σ steps h, res_multistep with c = (h - B) / (h r B), B = 1 - A. Handed x̂0' = x̂0 - A Δ / (B (1 + c)),
that step lands as if it had started from x_(k+1) - Δ. Which formula a row's sampler follows is
checked on the very step the skip took (x_(k+1) recomputed within 1e-5), on the device, without a
host read. A row that follows none of them may still step linearly in the sampler's last four x̂0s
(UniPC: its predictor-corrector pair reaches back that far): its step is fitted by least squares
(fitted_step) and the newest x̂0's weight read as (1 - A)(1 + c). Rows that fit nothing (CFG++,
most DEIS/iPNDM/LMS steps, churn, inpainting's blend) keep x̂0 as it is. It works on the guided
output (after CFG or any guidance node): that is what moves the latent.

Each a choice measured on the reference model against the alternative (bench/peers.py run on
variants of this file that were not kept):
- only the skipped step just before a computed one is corrected: correcting the earlier skips of a
  run as well was worse (its interpolation spans a longer gap);
- the model's x̂0 from the call made at the uncorrected latent is kept, not its ε;
- on DPM-Solver++(2M), Δ is the step's first-order share, not the (1 + c) times it by which the
  skipped x̂0 moved the latent, and the skipped x̂0 left in the sampler's history is not made up
  for. Those exact corrections trust the interpolated x̂0 further and were worse, most on the normal
  schedule; half of this Δ was worse too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Sequence

import torch

from .metrics import row_norms
from .noise_cache import SAME_SIGMA_RTOL, NoisePoint, extrapolate, implied_noise

STEP_RTOL = 1e-5  # float32 rounding: measured <= 1e-6 of a step; DEIS/UniPC steps miss by >= 1e-3
POINTS_KEPT = 4
FAMILIES = ("euler", "dpmpp_2m", "res_multistep")  # a row's sampler: the formula it follows, -1 none
FITTED = len(FAMILIES)  # the family of a row whose step was fitted (fitted_step)
HANDED_KEPT = 4         # x̂0s a fitted step may use: UniPC's predictor-corrector pair reaches back four
FITTED_C = (-0.5, 3.0)  # a fitted c outside this is not trusted (1 + c divides the shift)
FITTED_RTOL = 5e-6      # UniPC's steps fit within 2.1e-6; iPNDM's, which a correction harmed, from 9.7e-6


def history_weights(sigmas: Sequence[float], k: int) -> list[float]:
    """c of step k for each family (the multistep ones' first and last steps are Euler steps)."""
    if k == 0 or sigmas[k + 1] <= 0 or not sigmas[k - 1] > sigmas[k] > sigmas[k + 1]:
        return [0.0] * len(FAMILIES)
    h = math.log(sigmas[k] / sigmas[k + 1])
    r = math.log(sigmas[k - 1] / sigmas[k]) / h
    b = -math.expm1(-h)
    return [0.0, 1.0 / (2.0 * r), (h - b) / (h * r * b)]  # res_multistep: its φ2 weight, as c


def multistep_x(x: torch.Tensor, denoised: torch.Tensor, denoised_before: torch.Tensor, c: float,
                sigma: float, sigma_next: float) -> torch.Tensor:
    """The latent after a step x' = A x + (1 - A)((1 + c) D - c D_before) from σ to σ_next."""
    keep = sigma_next / sigma
    return keep * x + (1.0 - keep) * ((1.0 + c) * denoised - c * denoised_before)


def row_family(x: torch.Tensor, x_next: torch.Tensor, denoised: torch.Tensor, denoised_before: torch.Tensor,
               weights: Sequence[float], sigma: float, sigma_next: float) -> torch.Tensor:
    """Per row: the family whose step from x reaches x_next (the closest that fits), -1 none."""
    misses = []
    for c in weights:
        expected = multistep_x(x, denoised, denoised_before, c, sigma, sigma_next)
        miss = row_norms(x_next - expected)
        fits = miss <= STEP_RTOL * row_norms(expected - x)
        misses.append(torch.where(fits, miss, torch.full_like(miss, math.inf)))
    misses_t = torch.stack(misses)
    best = misses_t.argmin(dim=0)
    return torch.where(misses_t.min(dim=0).values.isfinite(), best, torch.full_like(best, -1))


def fitted_step(x: torch.Tensor, x_next: torch.Tensor, handed: Sequence[torch.Tensor], sigma: float,
                sigma_next: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row (c, fits): the step x' = A x + Σ_j w_j D_(k-j) through x_next, least squares over the
    handed x̂0s (newest first) in float64 on the device, and c = w_0 / (1 - A) - 1, the newest
    x̂0's weight as a one-history-value step would have it. Samplers outside the named families
    whose step is still linear in their recent x̂0s fit within FITTED_RTOL."""
    rows, keep = x.shape[0], sigma_next / sigma
    target = (x_next - keep * x).reshape(rows, 1, -1).double()
    basis = torch.stack([h.reshape(rows, -1).double() for h in handed], dim=1)    # rows, m, n
    weights, _ = torch.linalg.solve_ex(basis @ basis.transpose(1, 2), basis @ target.transpose(1, 2))
    miss = (target - weights.transpose(1, 2) @ basis).norm(dim=(1, 2))
    fits = miss <= FITTED_RTOL * row_norms((x_next - x).double())
    c = (weights[:, 0, 0] / (1.0 - keep) - 1.0).float()
    return c, fits & (c >= FITTED_C[0]) & (c <= FITTED_C[1])


def select_rows(t: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
    return t if index is None else t.index_select(0, index)


def skip_error(denoised_used: torch.Tensor, denoised_better: torch.Tensor, sigma: float,
               sigma_next: float) -> torch.Tensor:
    """Δ: the latent's (first-order) error from stepping σ → σ_next with denoised_used."""
    return (1.0 - sigma_next / sigma) * (denoised_used - denoised_better)


def shifted_denoised(denoised: torch.Tensor, error: torch.Tensor, c: torch.Tensor | float, sigma: float,
                     sigma_next: float) -> torch.Tensor:
    """x̂0 that makes the step from σ to σ_next (history weight c) land as if it started `error` closer."""
    keep = sigma_next / sigma
    return denoised - (keep / ((1.0 - keep) * (1.0 + c))) * error


@dataclass
class SkippedStep:
    step: int
    rows: list[int]
    x: torch.Tensor                 # the latent the skipped step started from
    denoised: torch.Tensor          # the (extrapolated) guided x̂0 it was handed
    history: list[torch.Tensor]     # the x̂0s handed to the steps before it, newest first (consecutive)


@dataclass
class SkipCorrection:
    """State of one run's corrections: recent computed guided noise, the last x̂0s handed and the
    last skipped step. A point's tag is its step, its rows the rows that step computed (None: all)."""
    points: list[NoisePoint] = field(default_factory=list)
    handed: list[tuple[int, torch.Tensor]] = field(default_factory=list)  # (step, the x̂0 the sampler got)
    skipped: SkippedStep | None = None
    corrected_rows: torch.Tensor | None = None  # on the device: how many row-steps were corrected

    def reset(self) -> None:
        self.points.clear()
        self.handed.clear()
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
        if computed_rows:
            rows = None if len(computed_rows) == x.shape[0] else tuple(computed_rows)
            sigma_t = torch.full((), sigma, device=x.device)
            point = NoisePoint(sigma_t, implied_noise(x, denoised, sigma_t), step, rows)
            self.points = self.points[-(POINTS_KEPT - 1):] + [point]
        out = denoised
        previous = self.skipped
        if previous is not None and previous.step == step - 1:
            rows = [row for row in computed_rows if row in previous.rows]
            if rows:
                out = self._correct(step, x, denoised, sigmas, previous, rows)
        if skipped_rows:
            self.skipped = SkippedStep(step, skipped_rows, x.clone(), denoised.float(), self._history(step))
        else:
            self.skipped = None
        self.handed = self.handed[-(HANDED_KEPT - 1):] + [(step, out.float())]
        return out

    def _history(self, step: int) -> list[torch.Tensor]:
        """The x̂0s handed to the steps just before `step`, newest first, as far as they run unbroken."""
        history = []
        for handed_step, handed in reversed(self.handed):
            if handed_step != step - 1 - len(history) or len(history) == HANDED_KEPT - 1:
                break
            history.append(handed)
        return history

    def _correct(self, step: int, x: torch.Tensor, denoised: torch.Tensor, sigmas: Sequence[float],
                 skipped: SkippedStep, rows: list[int]) -> torch.Tensor:
        sigma_skipped, sigma, sigma_next = sigmas[step - 1], sigmas[step], sigmas[step + 1]
        if sigma_next <= 0 or sigma - sigma_next <= SAME_SIGMA_RTOL * sigma:
            return denoised  # a last step (x̂0 is the result) or no room to shift through
        weights_skipped, weights = history_weights(sigmas, step - 1), history_weights(sigmas, step)
        out = denoised.clone()
        for group, points in self._groups(rows).items():
            # all rows (the batch decides as one): no index; else the host's row list, sent without waiting
            index = None if len(group) == x.shape[0] else torch.tensor(group).to(x.device, non_blocking=True)
            pick = partial(select_rows, index=index)
            # the quadratic through the points, evaluated between them (coinciding σ: lower order)
            better = pick(skipped.x) - sigma_skipped * pick(extrapolate(points, sigma_skipped, "quadratic"))
            before = pick(skipped.history[0]) if skipped.history else pick(skipped.denoised)
            family = row_family(pick(skipped.x), pick(x), pick(skipped.denoised), before, weights_skipped,
                                sigma_skipped, sigma)
            c = torch.tensor(weights, device=x.device)[family.clamp(min=0)]
            if len(skipped.history) == HANDED_KEPT - 1:  # rows no formula followed: their step fitted
                handed = [pick(skipped.denoised)] + [pick(h) for h in skipped.history]
                c_fitted, fits = fitted_step(pick(skipped.x), pick(x), handed, sigma_skipped, sigma)
                fitted = (family < 0) & fits
                c = torch.where(fitted, c_fitted, c)
                family = torch.where(fitted, torch.full_like(family, FITTED), family)
            c = c.reshape([-1] + [1] * (x.dim() - 1))
            error = skip_error(pick(skipped.denoised), better, sigma_skipped, sigma)
            fixed = shifted_denoised(pick(denoised).float(), error, c, sigma, sigma_next)
            known = (family >= 0).reshape(c.shape)
            result = torch.where(known, fixed, pick(denoised).float()).to(out.dtype)
            out = result if index is None else out.index_copy_(0, index, result)
            count = (family >= 0).sum()
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
