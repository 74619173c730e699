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
(UniPC: its predictor-corrector pair reaches back that far) or in its last four noises
ε = (x - x̂0) / σ (DEIS, iPNDM, LMS, gradient estimation: x' = x + Σ w_j ε_j, their history in past
latents too): its step is fitted by least squares (fitted_step), read as x' = (1 - p B) x + q B D_k
+ (older terms), and handed x̂0' = x̂0 - (1 - p B') Δ / (q B'), B' the next step's B (the named
formulas: p = 1, q = 1 + c). Rows that fit nothing (CFG++, churn, inpainting's blend) keep x̂0 as it
is. It works on the guided output (after CFG or any guidance node): that is what moves the latent.

Each a choice measured on the reference model against the alternative (bench/peers.py run on
variants of this file that were not kept):
- only the skipped step just before a computed one is corrected: correcting the earlier skips of a
  run as well was worse (its interpolation spans a longer gap);
- the model's x̂0 from the call made at the uncorrected latent is kept, not its ε;
- on DPM-Solver++(2M), Δ is the step's first-order share, not the (1 + c) times it by which the
  skipped x̂0 moved the latent, and the skipped x̂0 left in the sampler's history is not made up
  for. Those exact corrections trust the interpolated x̂0 further and were worse, most on the normal
  schedule; half of this Δ was worse too. The same holds for the noise-linear steps: Δ times their
  q (2.3 on iPNDM) lost up to 4.7 dB on the normal schedule (bench/all_samplers.py, not kept).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from functools import partial
from typing import NamedTuple, Sequence

import torch

from .metrics import row_norms
from .noise_cache import SAME_SIGMA_RTOL, NoisePoint, extrapolate, implied_noise

STEP_RTOL = 1e-5  # float32 rounding: measured <= 1e-6 of a step; DEIS/UniPC steps miss by >= 1e-3
POINTS_KEPT = 4


class SamplerFamily(IntEnum):
    """Which step a row's sampler took, as the correction found it (held per row in a tensor).

    The first three are the named formulas, in the order of `history_weights`; FITTED: a step
    linear in the last four x̂0s or noises, fitted by least squares (fitted_step)."""
    NONE = -1           # follows no known form: its x̂0 is left as it is
    EULER = 0           # Euler, DDIM: the newest x̂0 only
    DPMPP_2M = 1
    RES_MULTISTEP = 2
    FITTED = 3


FORMULAS = (SamplerFamily.EULER, SamplerFamily.DPMPP_2M, SamplerFamily.RES_MULTISTEP)


def known(family: torch.Tensor) -> torch.Tensor:
    """Per row: the step was identified, so its skip can be corrected."""
    return family != SamplerFamily.NONE


def steps_with_past_values(family: torch.Tensor) -> torch.Tensor:
    """Per row: the step used past x̂0s or noises besides the newest (every known family but Euler)."""
    return known(family) & (family != SamplerFamily.EULER)

HANDED_KEPT = 4         # steps a fitted step may use: UniPC's corrector pair, iPNDM and LMS reach back four
FITTED_Q = (0.5, 4.0)   # a fitted newest weight q outside this is not trusted (it divides the shift)
FITTED_RTOL = 5e-6      # a sampler's steps fit their own form within ~2e-6 (UniPC, iPNDM, DEIS, LMS; dev prints)


def history_weights(sigmas: Sequence[float], k: int) -> list[float]:
    """c of step k for each of the FORMULAS (the multistep ones' first and last steps are Euler steps)."""
    if k == 0 or sigmas[k + 1] <= 0 or not sigmas[k - 1] > sigmas[k] > sigmas[k + 1]:
        return [0.0] * len(FORMULAS)
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
    """Per row: the SamplerFamily of the formula whose step from x reaches x_next (the closest that
    fits), NONE where none does."""
    misses = []
    for c in weights:
        expected = multistep_x(x, denoised, denoised_before, c, sigma, sigma_next)
        miss = row_norms(x_next - expected)
        fits = miss <= STEP_RTOL * row_norms(expected - x)
        misses.append(torch.where(fits, miss, torch.full_like(miss, math.inf)))
    misses_t = torch.stack(misses)
    best = misses_t.argmin(dim=0)
    return torch.where(misses_t.min(dim=0).values.isfinite(), best, torch.full_like(best, SamplerFamily.NONE))


class Handed(NamedTuple):
    denoised: torch.Tensor  # the x̂0 a step was handed
    x: torch.Tensor         # the latent it was handed at
    sigma: float


def least_squares(target: torch.Tensor, basis: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row (weights [rows, m], miss): target ≈ Σ_j w_j basis_j, in float64 on the device (no host sync)."""
    rows = target.shape[0]
    target = target.reshape(rows, 1, -1).double()
    stacked = torch.stack([b.reshape(rows, -1).double() for b in basis], dim=1)    # rows, m, n
    weights, _ = torch.linalg.solve_ex(stacked @ stacked.transpose(1, 2), stacked @ target.transpose(1, 2))
    miss = (target - weights.transpose(1, 2) @ stacked).norm(dim=(1, 2))
    return weights[:, :, 0], miss


def fitted_step(handed: Sequence[Handed], x_next: torch.Tensor,
                sigma_next: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row (p, q, fits) of the step from handed[0] to x_next, written x' = (1 - p B) x + q B D + (older
    terms), B = 1 - σ_next/σ: how much of the latent and of the newest x̂0 the step carries.

    handed: what the sampler's last steps were handed (x̂0, latent, σ), newest first. Two forms
    are fitted by least squares: linear in the recent x̂0s with the latent kept as A x (UniPC's
    predictor-corrector pair: p = 1, q = the newest weight / B), and linear in the recent noises
    ε = (x - x̂0) / σ on top of x (DEIS, iPNDM, LMS, gradient estimation: p = q = the newest
    weight / -σ B). A row fits where one form reaches x_next within FITTED_RTOL of the step."""
    denoised, x, sigma = handed[0]
    keep = sigma_next / sigma
    weights, miss_x0 = least_squares(x_next - keep * x, [d for d, _, _ in handed])
    q_x0 = weights[:, 0] / (1.0 - keep)
    weights, miss_eps = least_squares(x_next - x, [(latent - d) / s for d, latent, s in handed])
    q_eps = weights[:, 0] / (-sigma * (1.0 - keep))
    # Past latents are themselves steps over past x̂0s, so a step of one form often fits the other
    # within FITTED_RTOL too, with a meaningless q; the sampler's own form fits closest (iPNDM, DEIS,
    # LMS, UniPC on the reference model: 1.3 to thousands of times closer in a development run's
    # prints; gradient estimation's two-value step fits both alike, with the same q).
    x0_form = miss_x0 <= miss_eps
    p = torch.where(x0_form, torch.ones_like(q_x0), q_eps).float()
    q = torch.where(x0_form, q_x0, q_eps).float()
    fits = torch.minimum(miss_x0, miss_eps) <= FITTED_RTOL * row_norms((x_next - x).double())
    return p, q, fits & (q >= FITTED_Q[0]) & (q <= FITTED_Q[1])


def select_rows(t: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
    return t if index is None else t.index_select(0, index)


def skip_error(denoised_used: torch.Tensor, denoised_better: torch.Tensor, sigma: float,
               sigma_next: float) -> torch.Tensor:
    """Δ: the latent's (first-order) error from stepping σ → σ_next with denoised_used."""
    return (1.0 - sigma_next / sigma) * (denoised_used - denoised_better)


def shifted_denoised(denoised: torch.Tensor, error: torch.Tensor, p: torch.Tensor | float, q: torch.Tensor | float,
                     sigma: float, sigma_next: float) -> torch.Tensor:
    """x̂0 that makes the step x' = (1 - p B) x + q B D + … from σ to σ_next land as if it started `error`
    closer (the named formulas: p = 1, q = 1 + c)."""
    b = 1.0 - sigma_next / sigma
    return denoised - ((1.0 - p * b) / (q * b)) * error


@dataclass
class SkippedStep:
    step: int
    rows: list[int]
    handed: Handed                  # its latent and the (extrapolated) guided x̂0 it was handed
    history: list[Handed]           # what the steps before it were handed, newest first (consecutive)


@dataclass
class SkipCorrection:
    """State of one run's corrections: recent computed guided noise, the last x̂0s handed and the
    last skipped step. A point's rows are the rows its step computed (None: all)."""
    points: list[NoisePoint] = field(default_factory=list)
    handed: list[tuple[int, Handed]] = field(default_factory=list)  # (step, what the sampler got there)
    skipped: SkippedStep | None = None
    corrected_rows: torch.Tensor | None = None  # on the device: how many row-steps were corrected
    # on the device: of those, how many stepped with past x̂0s or noises besides the newest (DPM++ 2M,
    # res_multistep, UniPC, DEIS, iPNDM, LMS; not Euler or DDIM)
    past_value_rows: torch.Tensor | None = None
    # Before the sampler's rhythm is known an evaluation's step is told by the callback after it:
    # the last (evaluation, x, x̂0), recorded once that callback names its step (place_warmup).
    unplaced: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def reset(self) -> None:
        self.points.clear()
        self.handed.clear()
        self.skipped = None
        self.unplaced = None
        self.corrected_rows = None
        self.past_value_rows = None

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
            point = NoisePoint(sigma_t, implied_noise(x, denoised, sigma_t), rows=rows)
            self.points = self.points[-(POINTS_KEPT - 1):] + [point]
        out = denoised
        previous = self.skipped
        if previous is not None and previous.step == step - 1:
            rows = [row for row in computed_rows if row in previous.rows]
            if rows:
                out = self._correct(step, x, denoised, sigmas, previous, rows)
        # a skipped row's x̂0 is never corrected in its own step: `out` is what it was handed
        handed = Handed(out.float(), x.clone(), sigma)
        self.skipped = SkippedStep(step, skipped_rows, handed, self._history(step)) if skipped_rows else None
        self._remember(step, handed)
        return out

    def hold_warmup(self, evaluation: int, x: torch.Tensor, denoised: torch.Tensor) -> None:
        """A warm-up evaluation whose step its callback will name: float32 copies, since the sampler
        may update x in place before then."""
        channels = denoised.shape[1]
        self.unplaced = (evaluation, x[:, :channels].to(torch.float32, copy=True), denoised.to(torch.float32, copy=True))

    def place_warmup(self, latest_evaluation: int, step: int, sigmas: Sequence[float]) -> None:
        """The callback named `step`: the held evaluation, if it is the latest, was that step's first
        (the first skips' fitted steps reach back into the warm-up)."""
        unplaced, self.unplaced = self.unplaced, None
        if unplaced is not None and unplaced[0] == latest_evaluation and 0 <= step < len(sigmas) - 1:
            self.record_warmup(step, unplaced[1], unplaced[2], sigmas[step])

    def record_warmup(self, step: int, x: torch.Tensor, denoised: torch.Tensor, sigma: float) -> None:
        """What a warm-up step the pack could not place until its callback was handed (float32 copies of
        x and x̂0, kept as they are): the history the first skips' fitted steps reach back into. Not
        a noise point: the interpolation's points stay the run's first step and the steps from the
        sampler's rhythm on (with steps 1-2 among them, a variant not kept, euler/normal at 2x lost
        and no x̂0-formula sampler gained; figures in issue 11's notes)."""
        if sigma > 0:
            self._remember(step, Handed(denoised, x, sigma))

    def _remember(self, step: int, handed: Handed) -> None:
        self.handed = self.handed[-(HANDED_KEPT - 1):] + [(step, handed)]

    def _history(self, step: int) -> list[Handed]:
        """What the steps just before `step` were handed, newest first, as far as they run unbroken."""
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
            skipped_x, skipped_denoised = pick(skipped.handed.x), pick(skipped.handed.denoised)
            better = skipped_x - sigma_skipped * pick(extrapolate(points, sigma_skipped, "quadratic"))
            before = pick(skipped.history[0].denoised) if skipped.history else skipped_denoised
            family = row_family(skipped_x, pick(x), skipped_denoised, before, weights_skipped, sigma_skipped, sigma)
            c = torch.tensor(weights, device=x.device)[family.clamp(min=0)]
            p, q = torch.ones_like(c), 1.0 + c
            if len(skipped.history) == HANDED_KEPT - 1:  # rows no formula followed: their step fitted
                handed = [Handed(pick(h.denoised), pick(h.x), h.sigma) for h in [skipped.handed] + skipped.history]
                p_fitted, q_fitted, fits = fitted_step(handed, pick(x), sigma)
                fitted = ~known(family) & fits
                p, q = torch.where(fitted, p_fitted, p), torch.where(fitted, q_fitted, q)
                family = torch.where(fitted, torch.full_like(family, SamplerFamily.FITTED), family)
            shape = [-1] + [1] * (x.dim() - 1)
            error = skip_error(skipped_denoised, better, sigma_skipped, sigma)
            fixed = shifted_denoised(pick(denoised).float(), error, p.reshape(shape), q.reshape(shape), sigma,
                                     sigma_next)
            result = torch.where(known(family).reshape(shape), fixed, pick(denoised).float()).to(out.dtype)
            out = result if index is None else out.index_copy_(0, index, result)
            count, past = known(family).sum(), steps_with_past_values(family).sum()
            self.corrected_rows = count if self.corrected_rows is None else self.corrected_rows + count
            self.past_value_rows = past if self.past_value_rows is None else self.past_value_rows + past
        return out

    def _groups(self, rows: list[int]) -> dict[tuple[int, ...], list[NoisePoint]]:
        """Rows grouped by their newest three computed points (one group unless per-sample
        decisions differ); a row needs two."""
        members: dict[tuple[int, ...], list[int]] = {}
        for row in rows:
            newest = tuple(i for i, p in enumerate(self.points) if p.covers(row))[-3:]
            members.setdefault(newest, []).append(row)
        return {tuple(group): [self.points[i] for i in newest] for newest, group in members.items()
                if len(newest) >= 2}
