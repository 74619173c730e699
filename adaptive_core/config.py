"""The user-facing parameters of AdaptiveDiffusion, validated in one place."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum

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


class ParamKind(Enum):
    """What values a parameter takes; decides its check and its widget."""
    FLOAT = "float"
    INT = "int"      # a whole number (a float with no fraction passes, as it always did)
    BOOL = "bool"
    CHOICE = "choice"


class NodeInput(Enum):
    """Where the nodes show a parameter."""
    REQUIRED = "required"
    # Appended after every existing input, so saved workflows and API prompts without it still load;
    # its absence means the parameter's `default` (what such a prompt meant when it was saved).
    OPTIONAL = "optional"
    NONE = "none"    # set in code only (AdaptiveConfig), no node input


@dataclass(frozen=True)
class AdaptiveParam:
    """One user-facing parameter: the row of ADAPTIVE_PARAMS that the nodes and validation derive from.

    name: the AdaptiveConfig field and the node input; never renamed (saved workflows store it).
    default: AdaptiveConfig's default and, for an OPTIONAL input, what its absence means.
    bounds: (low, high), both included, for FLOAT and INT. choices: the values of a CHOICE.
    placed_default: a newly placed node's widget value where it differs from `default`.
    """
    name: str
    kind: ParamKind
    default: float | int | bool | str
    bounds: tuple[float, float] | tuple[int, int] | None = None
    choices: tuple[str, ...] = ()
    node_input: NodeInput = NodeInput.REQUIRED
    placed_default: float | int | bool | str | None = None

    @property
    def widget_default(self) -> float | int | bool | str:
        return self.default if self.placed_default is None else self.placed_default

    def problem(self, value: object) -> str | None:
        """A message naming this parameter and the bad value, or None when `value` is accepted."""
        if self.kind is ParamKind.BOOL:
            return None if isinstance(value, bool) else f"{self.name} must be true or false, got {value!r}"
        if self.kind is ParamKind.CHOICE:
            if value in self.choices:
                return None
            return f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}"
        low, high = self.bounds
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{self.name} must be a number, got {value!r}"
        if self.kind is ParamKind.INT and value != int(value):
            return f"{self.name} must be a whole number, got {value!r}"
        if not (low <= value <= high) or value != value:  # value != value: NaN
            return f"{self.name} must be between {low} and {high}, got {value!r}"
        return None


# The adaptive parameters, in node input order: the nodes' inputs (nodes/inputs.py adds the widgets'
# tooltips and steps), the nodes' VALIDATE_INPUTS, config_problem and AdaptiveConfig's defaults all come
# from here. New parameters go last (a node's inputs may be appended to, never reordered).
ADAPTIVE_PARAMS: dict[str, AdaptiveParam] = {param.name: param for param in (
    AdaptiveParam("threshold", ParamKind.FLOAT, 0.01, bounds=(0.0, 1.0)),
    AdaptiveParam("max_skip_steps", ParamKind.INT, 4, bounds=(1, 100)),
    AdaptiveParam("warmup_steps", ParamKind.INT, 4, bounds=(3, 1000)),
    AdaptiveParam("keep_last_steps", ParamKind.INT, 1, bounds=(0, 1000)),
    AdaptiveParam("noise_reuse", ParamKind.CHOICE, DEFAULT_NOISE_REUSE, choices=NOISE_REUSE_MODES),
    AdaptiveParam("per_sample", ParamKind.BOOL, False),
    AdaptiveParam("speed", ParamKind.CHOICE, SPEED_THRESHOLD, choices=SPEED_CHOICES,
                  node_input=NodeInput.OPTIONAL, placed_default=DEFAULT_SPEED),
    AdaptiveParam("error_tolerance", ParamKind.FLOAT, DEFAULT_ERROR_TOLERANCE, bounds=(0.0, 100.0),
                  node_input=NodeInput.NONE),
)}

# The bounds of the numeric parameters by name (a view of ADAPTIVE_PARAMS, kept for importers).
LIMITS = {name: param.bounds for name, param in ADAPTIVE_PARAMS.items() if param.bounds is not None}

# config_problem reports the first problem it finds: numbers first, then the switch, then the lists,
# the order it has always checked in (each group in table order).
_CHECK_RANK = {ParamKind.FLOAT: 0, ParamKind.INT: 0, ParamKind.BOOL: 1, ParamKind.CHOICE: 2}
_PARAMS_IN_CHECK_ORDER = tuple(sorted(ADAPTIVE_PARAMS.values(), key=lambda param: _CHECK_RANK[param.kind]))


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

    threshold: float = ADAPTIVE_PARAMS["threshold"].default
    max_skip_steps: int = ADAPTIVE_PARAMS["max_skip_steps"].default
    warmup_steps: int = ADAPTIVE_PARAMS["warmup_steps"].default
    keep_last_steps: int = ADAPTIVE_PARAMS["keep_last_steps"].default
    noise_reuse: str = ADAPTIVE_PARAMS["noise_reuse"].default
    per_sample: bool = ADAPTIVE_PARAMS["per_sample"].default
    speed: str = ADAPTIVE_PARAMS["speed"].default
    error_tolerance: float = ADAPTIVE_PARAMS["error_tolerance"].default

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


def config_problem(steps: int | None = None, **values: object) -> str | None:
    """Return a message naming the first bad input, or None. Inputs left as None are not checked.

    `values` are ADAPTIVE_PARAMS by name; any other name is a TypeError, as an unknown keyword is.
    """
    unknown = [name for name in values if name not in ADAPTIVE_PARAMS]
    if unknown:
        raise TypeError(f"config_problem() got an unexpected keyword argument {unknown[0]!r}")
    for param in _PARAMS_IN_CHECK_ORDER:
        value = values.get(param.name)
        problem = None if value is None else param.problem(value)
        if problem:
            return problem
    # steps < warmup_steps is no error: a 1-4 step Turbo/LCM graph runs unskipped (AdaptiveRun).
    return None
