"""The user-facing parameters of AdaptiveDiffusion, validated in one place."""
from __future__ import annotations

from dataclasses import asdict, dataclass

NOISE_REUSE_MODES = ("linear", "quadratic", "hold")
DEFAULT_NOISE_REUSE = "linear"

# Bounds shared by the node inputs and by validation; the names are the node input names.
LIMITS = {
    "threshold": (0.0, 1.0),
    "max_skip_steps": (1, 100),
    "warmup_steps": (3, 1000),
    "keep_last_steps": (0, 1000),
}


@dataclass(frozen=True)
class AdaptiveConfig:
    """Parameters of one AdaptiveDiffusion patch.

    threshold: δ of the paper; a step is skipped when the latent's first differences change
        almost linearly, |d_k - 2 d_(k-1) + d_(k-2)| <= 2 δ d_(k-1). 0 switches skipping off.
    max_skip_steps: Cmax, the most steps skipped in a row.
    warmup_steps: the first steps are always computed (the criterion needs three differences).
    keep_last_steps: the final steps are always computed (0 = the paper, which has no such rule).
    noise_reuse: what a skipped model call returns: the last computed noise ("hold", the
        paper's reuse) or an extrapolation in σ from the last computed calls.
    per_sample: one decision per batch row (each prompt its own path) instead of per batch.
    """

    threshold: float = 0.01
    max_skip_steps: int = 4
    warmup_steps: int = 4
    keep_last_steps: int = 1
    noise_reuse: str = DEFAULT_NOISE_REUSE
    per_sample: bool = False

    def __post_init__(self) -> None:
        problem = config_problem(**asdict(self))
        if problem:
            raise ValueError(problem)

    @property
    def enabled(self) -> bool:
        return self.threshold > 0


def config_problem(threshold=None, max_skip_steps=None, warmup_steps=None, keep_last_steps=None,
                   noise_reuse=None, per_sample=None, steps=None) -> str | None:
    """Return a message naming the first bad input, or None. Inputs left as None are not checked."""
    values = {"threshold": threshold, "max_skip_steps": max_skip_steps,
              "warmup_steps": warmup_steps, "keep_last_steps": keep_last_steps}
    for name, value in values.items():
        if value is None:
            continue
        low, high = LIMITS[name]
        kind = float if name == "threshold" else int
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{name} must be a number, got {value!r}"
        if kind is int and value != int(value):
            return f"{name} must be a whole number, got {value!r}"
        if not (low <= value <= high) or value != value:  # value != value: NaN
            return f"{name} must be between {low} and {high}, got {value!r}"
    if per_sample is not None and not isinstance(per_sample, bool):
        return f"per_sample must be true or false, got {per_sample!r}"
    if noise_reuse is not None and noise_reuse not in NOISE_REUSE_MODES:
        return f"noise_reuse must be one of {', '.join(NOISE_REUSE_MODES)}, got {noise_reuse!r}"
    # steps < warmup_steps is no error: a 1-4 step Turbo/LCM graph runs unskipped (AdaptiveRun).
    return None
