"""The oracle skip path and δ calibration: searches over whole sampling runs.

Both take a `sample` function from the host that runs the sampler once (a skip path or a δ in,
the final latent out), so they are pure search logic and can be tested without ComfyUI.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .config import AdaptiveConfig


def relative_error(latent: torch.Tensor, reference: torch.Tensor) -> float:
    """‖x − x_ref‖ / ‖x_ref‖ over the whole latent."""
    reference = reference.float()
    return float((latent.float() - reference).norm() / reference.norm().clamp_min(1e-12))


def latent_psnr(latent: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB against the reference, peak = the reference's value range."""
    reference = reference.float()
    mse = float(((latent.float() - reference) ** 2).mean())
    peak = float(reference.max() - reference.min()) or 1.0
    return math.inf if mse == 0 else 10 * math.log10(peak ** 2 / mse)


@dataclass
class OracleResult:
    skip: list[bool]
    error: float
    rollouts: int


def greedy_oracle(sample_path: Callable[[list[bool]], torch.Tensor], reference: torch.Tensor,
                  total_steps: int, config: AdaptiveConfig, tolerance: float,
                  max_rollouts: int) -> OracleResult:
    """Walk the steps in order; keep a tentative skip if the final latent stays within
    `tolerance` (relative error) of the full-step reference and Cmax holds. Costs one sampling
    run per candidate step, at most `max_rollouts`; later steps stay computed."""
    skip = [False] * total_steps
    error, rollouts, in_a_row = 0.0, 0, 0
    last_candidate = total_steps - max(config.keep_last_steps, 0)
    for k in range(config.warmup_steps, last_candidate):
        if rollouts >= max_rollouts:
            break
        if in_a_row >= config.max_skip_steps:
            in_a_row = 0
            continue
        skip[k] = True
        rollouts += 1
        trial_error = relative_error(sample_path(skip), reference)
        if trial_error <= tolerance:
            error, in_a_row = trial_error, in_a_row + 1
        else:
            skip[k], in_a_row = False, 0
    return OracleResult(skip, error, rollouts)


@dataclass
class Calibration:
    threshold: float
    psnr: float
    model_calls: float
    probes: list[tuple[float, float, float]]  # (δ, PSNR, calls) of every probe, in order


def calibrate_threshold(evaluate: Callable[[float], tuple[float, float]], target: str, value: float,
                        iterations: int = 8, upper: float = 0.5) -> Calibration:
    """Bisection on δ ∈ [0, upper]. evaluate(δ) → (mean PSNR vs full steps, mean model calls).

    target "psnr": the largest δ whose PSNR is at least `value` dB;
    target "model_calls": the smallest δ whose calls are at most `value` (δ = upper, the fewest
    calls it tries, when no δ meets the budget).
    Both quantities are monotone in δ in practice, which bisection relies on.
    """
    if target not in ("psnr", "model_calls"):
        raise ValueError(f"target must be psnr or model_calls, got {target!r}")
    probes: dict[float, tuple[float, float]] = {}

    def meets(delta: float) -> bool:
        if delta not in probes:
            probes[delta] = evaluate(delta)
        psnr, calls = probes[delta]
        return psnr >= value if target == "psnr" else calls <= value

    # `good` always meets the target (or is the best available end), `bad` never does.
    good, bad = (0.0, upper) if target == "psnr" else (upper, 0.0)
    if not meets(bad):
        for _ in range(iterations):
            middle = (good + bad) / 2
            if meets(middle):
                good = middle
            else:
                bad = middle
    else:
        good = bad
    meets(good)
    psnr, calls = probes[good]
    return Calibration(good, psnr, calls, [(d, *probes[d]) for d in probes])
