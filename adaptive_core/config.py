"""The user-facing parameters of AdaptiveDiffusion, validated in one place."""
from __future__ import annotations

from dataclasses import asdict, dataclass

NOISE_REUSE_MODES = ("linear", "quadratic", "hold")
# Quadratic scores above linear in 183 of 240 cells (configuration x speed) of bench/peers.py with the speed control
# (bench/results/peers_summary.md); saved workflows keep the mode they stored.
DEFAULT_NOISE_REUSE = "quadratic"

# The one speed control. "threshold (δ)" = the criterion with the absolute δ (the paper, and the
# meaning of every workflow saved before the control existed); the others ask for about that many
# times fewer model calls, met online whatever the model's scale (adaptive_core/decision.py).
SPEED_THRESHOLD = "threshold (δ)"
SPEED_FACTORS = {"1.25x": 1.25, "1.5x": 1.5, "1.75x": 1.75, "2x": 2.0, "2.5x": 2.5, "3x": 3.0}  # choices may be added, never renamed
SPEED_CHOICES = (SPEED_THRESHOLD, *SPEED_FACTORS)
DEFAULT_SPEED = "2x"                # a newly placed node; a missing input means SPEED_THRESHOLD
# See AdaptiveConfig.error_tolerance. The estimate stays at or below 0.05 where a speed may skip on
# the ODE samplers measured (bench/results/placement.md). Ancestral/SDE samplers add fresh noise
# every step and their estimate is above 0.1: every such skip is refused (bench/peers.py rows).
DEFAULT_ERROR_TOLERANCE = 0.1

# Bounds shared by the node inputs and by validation; the names are the node input names.
LIMITS = {
    "threshold": (0.0, 1.0),
    "max_skip_steps": (1, 100),
    "warmup_steps": (3, 1000),
    "keep_last_steps": (0, 1000),
    "error_tolerance": (0.0, 100.0),
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
    speed: SPEED_THRESHOLD = decide with δ alone (the paper's rule); "1.25x" … "3x" = skip
        about that share of the steps, spread out (at most a few in a row), at the steps where the
        σ schedule makes a skip cheapest (decision.speed_plan; threshold > 0 only switches it on).
        Samplers with 2+ calls a step (heun, dpm_2) first answer a step's first call from the
        previous step's later call (decision.reuse_plan), one call saved each. With steps linear in
        the sampler's recent x̂0s (euler, ddim, dpmpp_2m, res_multistep, uni_pc) or noises (deis,
        ipndm, lms, gradient_estimation) the computed step after a skip corrects it (correction.py);
        those that step with past values (all of them but euler and ddim) compute the planned skips
        a much longer step would reuse (decision.reused_by_long_step: the normal schedule's end); that
        long step itself is never planned as a skip (decision.cheapest_skips).
    error_tolerance: with a speed, a planned skip is refused when the embedded error estimate (the gap
        between the quadratic and linear noise predictions at the step's σ, relative to |ε|)
        exceeds it.
    """

    threshold: float = 0.01
    max_skip_steps: int = 4
    warmup_steps: int = 4
    keep_last_steps: int = 1
    noise_reuse: str = DEFAULT_NOISE_REUSE
    per_sample: bool = False
    speed: str = SPEED_THRESHOLD
    error_tolerance: float = DEFAULT_ERROR_TOLERANCE

    def __post_init__(self) -> None:
        problem = config_problem(**asdict(self))
        if problem:
            raise ValueError(problem)

    @property
    def enabled(self) -> bool:
        return self.threshold > 0

    @property
    def speed_factor(self) -> float | None:
        """How many times fewer model calls the speed asks for; None: decide with δ alone."""
        return SPEED_FACTORS.get(self.speed)


def config_problem(threshold=None, max_skip_steps=None, warmup_steps=None, keep_last_steps=None,
                   noise_reuse=None, per_sample=None, steps=None, speed=None,
                   error_tolerance=None) -> str | None:
    """Return a message naming the first bad input, or None. Inputs left as None are not checked."""
    values = {"threshold": threshold, "max_skip_steps": max_skip_steps,
              "warmup_steps": warmup_steps, "keep_last_steps": keep_last_steps,
              "error_tolerance": error_tolerance}
    for name, value in values.items():
        if value is None:
            continue
        low, high = LIMITS[name]
        kind = float if name in ("threshold", "error_tolerance") else int
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
    if speed is not None and speed not in SPEED_CHOICES:
        return f"speed must be one of {', '.join(SPEED_CHOICES)}, got {speed!r}"
    # steps < warmup_steps is no error: a 1-4 step Turbo/LCM graph runs unskipped (AdaptiveRun).
    return None
