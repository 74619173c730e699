"""The skip decision for all batch rows at once, on tensors: one host sync per step (the caller's).

Inputs per step k: d, the history of latent differences [k + 1, rows] (d_j = mean |x_j - x_(j-1)|),
and how many steps each row skipped just before k. Two modes:

* threshold (δ), the paper: skip iff |d_k - 2 d_(k-1) + d_(k-2)| <= 2 δ d_(k-1) and fewer than Cmax
  steps were skipped in a row (exactly `criterion.should_skip`, for every row at once).
* a speed ("2x" fewer model calls, ...): a budget met online. Every step that may be skipped earns
  `rate` skip credit, a skip spends 1. A step is skipped when the credit covers it and the step
  looks smooth *for this run*: the third-order criterion and the embedded error estimate (the gap
  between the quadratic and linear noise predictions at the step's σ, relative to |ε|, as an ODE
  solver's step-size control) are ranked against this run's earlier steps, so nothing depends on
  the model's scale; the step's risk is the mean rank. A smooth step is skipped with half a
  credit, the roughest only once a skip is overdue (1.5 credits): the ranks move skips by about a
  step within the budget's pace, they do not bank credit for later. Skips are spread: at most `max_in_a_row` in a row, the fewest the budget
  allows; a gap above `tolerance` refuses the skip whatever the budget.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SMOOTH_STEP_CREDIT = 0.5  # credit needed to skip the smoothest step so far; the roughest needs 1.5


@dataclass(frozen=True)
class Budget:
    rate: float        # skip credit earned per skippable step
    max_in_a_row: int  # Cmax for this speed (never above the user's max_skip_steps)


def plan_budget(factor: float, total_steps: int, skippable: int, max_skip_steps: int) -> Budget:
    """Credit rate and run length for about `factor` times fewer calls over `total_steps` steps.

    One extra skip is asked for: credit left unspent at the end of a run is at most about one.
    """
    if skippable <= 0:
        return Budget(0.0, 1)
    wanted = total_steps * (1.0 - 1.0 / factor) + 1.0
    rate = min(wanted / skippable, 1.0)
    in_a_row = max_skip_steps if rate >= 1.0 else min(max_skip_steps, max(1, math.ceil(rate / (1.0 - rate) - 1e-9)))
    return Budget(min(rate, in_a_row / (in_a_row + 1.0)), in_a_row)


def exact(t: torch.Tensor) -> torch.Tensor:
    """float64 where the device has it, so the criterion rounds as the paper's Python code does."""
    return t if t.device.type == "mps" else t.double()


def second_difference(d: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(|d_k - 2 d_(k-1) + d_(k-2)|, 2 d_(k-1)) per row, the two sides of the criterion."""
    d = exact(d)
    return (d[k] - 2.0 * d[k - 1] + d[k - 2]).abs(), 2.0 * d[k - 1]


def paper_skip(d: torch.Tensor, k: int, delta: float, room: torch.Tensor) -> torch.Tensor:
    """The paper's rule per row; `room`: fewer than Cmax skips in a row before k."""
    change, scale = second_difference(d, k)
    return room & (change <= delta * scale)  # product form: no division by d_(k-1)


def relative_criterion(d: torch.Tensor, k: int) -> torch.Tensor:
    """|d_k - 2 d_(k-1) + d_(k-2)| / (2 d_(k-1)) per row (inf where d_(k-1) = 0 and it moved)."""
    change, scale = second_difference(d, k)
    return torch.where(change == 0, torch.zeros_like(change), change / scale).float()


def rank_in_run(history: torch.Tensor, now: torch.Tensor) -> torch.Tensor:
    """Share of this run's earlier values below `now` (0 = none smoother so far: ties count as
    smooth, so a path that is exactly linear throughout skips eagerly); 0.5 with no history."""
    if history.shape[0] == 0:
        return torch.full_like(now, 0.5)
    return (history < now).float().mean(0)


def budget_skip(signals: torch.Tensor, history: torch.Tensor, credit: torch.Tensor,
                room: torch.Tensor, tolerance: float) -> torch.Tensor:
    """Per row: skip now? signals [rows, 2] = (criterion, error estimate) at this step."""
    risk = rank_in_run(history, signals).mean(-1)
    return room & (signals[:, 1] <= tolerance) & (credit >= SMOOTH_STEP_CREDIT + risk)


def prediction_gap(points: list, sigma: float) -> torch.Tensor:
    """Per row: |ε̂_quadratic(σ) - ε̂_linear(σ)| / |ε_newest| from the newest three noise points
    (any objects with .sigma and .eps tensors of the same rows, oldest first); 0 with fewer points
    or coinciding σ."""
    if len(points) < 3:
        return torch.zeros(points[-1].eps.shape[0], device=points[-1].eps.device) if points else torch.zeros(1)
    pm, p0, p1 = points[-3:]
    slope1 = (p1.eps - p0.eps) / (p1.sigma - p0.sigma)
    slope0 = (p0.eps - pm.eps) / (p0.sigma - pm.sigma)
    gap = (slope1 - slope0) / (p1.sigma - pm.sigma) * ((sigma - p1.sigma) * (sigma - p0.sigma))
    rows = gap.shape[0]
    ratio = gap.float().reshape(rows, -1).norm(dim=1) / p1.eps.float().reshape(rows, -1).norm(dim=1).clamp_min(1e-12)
    return torch.nan_to_num(ratio, nan=0.0, posinf=0.0)
