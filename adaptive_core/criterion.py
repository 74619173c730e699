"""The skip criterion of AdaptiveDiffusion (Ye et al., NeurIPS 2024), as one pure function.

d_k = mean |x_k - x_(k-1)| over the whole latent, where x_k is the latent entering step k.
Step k is skipped iff
  1. skipping is on (δ > 0) and k >= warmup_steps,
  2. k is not one of the protected final steps,
  3. |d_k - 2 d_(k-1) + d_(k-2)| <= 2 δ d_(k-1)   (the latent moves almost linearly), and
  4. fewer than max_skip_steps steps were skipped in a row just before k.
Cmax (4.) holds from the first decision on; the reference code only checks it once five
decisions exist, which lets its first run of skips exceed Cmax.
The run decides on tensors for all rows at once (decision.py); this is the rule in plain Python.
"""
from __future__ import annotations

import math
from typing import Sequence

from .config import AdaptiveConfig


def mean_abs_change(x_now, x_prev) -> float:
    """d_k: mean absolute difference of two latents, in float32, as a Python float."""
    return float((x_now.float() - x_prev.float()).abs().mean())


def criterion_value(d: Sequence[float | None], k: int) -> float | None:
    """|d_k - 2 d_(k-1) + d_(k-2)| / (2 d_(k-1)): skip when it is <= δ. None before step 3."""
    if k < 3 or k >= len(d) or None in (d[k], d[k - 1], d[k - 2]):
        return None
    second_difference = abs(d[k] - 2.0 * d[k - 1] + d[k - 2])
    if d[k - 1] == 0.0:
        return 0.0 if second_difference == 0.0 else math.inf
    return second_difference / (2.0 * d[k - 1])


def should_skip(d: Sequence[float | None], k: int, total_steps: int, skipped_in_a_row: int,
                config: AdaptiveConfig, protected_tail: int | None = None) -> bool:
    """Decide step k from the differences d[1..k] (d[0] is None: x_(-1) does not exist)."""
    tail = config.keep_last_steps if protected_tail is None else protected_tail
    if not config.enabled or k < config.warmup_steps or k >= total_steps - tail:
        return False
    if skipped_in_a_row >= config.max_skip_steps or criterion_value(d, k) is None:
        return False
    # The product form decides the exact boundary without dividing by d_(k-1).
    return abs(d[k] - 2.0 * d[k - 1] + d[k - 2]) <= 2.0 * config.threshold * d[k - 1]
