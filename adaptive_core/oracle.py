"""The oracle skip path: the ground truth the paper compares its criterion with.

A greedy search over whole sampling runs. It takes a `sample_path` function from the host that
runs the sampler once with a skip path and returns the final latent, so it is pure search logic
and can be tested without ComfyUI.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .config import AdaptiveConfig
from .metrics import relative_error


@dataclass
class OracleResult:
    skip: list[bool]
    error: float
    rollouts: int


def greedy_oracle(sample_path: Callable[[list[bool]], torch.Tensor], reference: torch.Tensor,
                  total_steps: int, config: AdaptiveConfig, tolerance: float,
                  max_rollouts: int, kept_last_steps: int | None = None) -> OracleResult:
    """Walk the steps in order; keep a tentative skip if the final latent stays within
    `tolerance` (relative error) of the full-step reference and Cmax holds. Costs one sampling
    run per candidate step, at most `max_rollouts`; later steps stay computed.

    kept_last_steps: final steps that are never candidates, because the run computes them
    whatever the path says. A multi-evaluation sampler (heun, dpm_2, ...) always computes its last
    2 steps (StepClock.protected_tail; a full run's trace records it). None: keep_last_steps.
    """
    skip = [False] * total_steps
    error, rollouts, in_a_row = 0.0, 0, 0
    tail = config.keep_last_steps if kept_last_steps is None else kept_last_steps
    last_candidate = total_steps - max(tail, 0)
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
