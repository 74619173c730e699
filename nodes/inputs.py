"""The AdaptiveDiffusion inputs shared by every node, and their validation."""
from __future__ import annotations

from inspect import Parameter, Signature

from ..adaptive_core import AdaptiveConfig, config_problem
from ..adaptive_core.config import ADAPTIVE_PARAMS, AdaptiveParam, NodeInput, ParamKind

# What only the widgets add to ADAPTIVE_PARAMS: a float's step and rounding, and the tooltips.
WIDGET_OPTIONS = {
    "threshold": {
        "step": 0.001, "round": 0.0001,
        "tooltip": "δ: skip a step when the latent's change is this close to linear. Higher skips "
                   "more (faster, further from the full result). 0 turns skipping off. The paper "
                   "uses 0.01 for SD/SDXL and 0.008 for image-to-video. Used when speed is 'threshold (δ)'; "
                   "with another speed, skipping follows the speed and δ only switches it on."},
    "max_skip_steps": {
        "tooltip": "Cmax: the most steps skipped in a row before one is computed again. With a "
                   "speed, runs are kept as short as the speed allows and never longer than this."},
    "warmup_steps": {
        "tooltip": "The first steps are always computed: they set the composition, and the "
                   "criterion needs three latent differences."},
    "keep_last_steps": {
        "tooltip": "The final steps are always computed, so no residual noise is left. "
                   "0 = the paper. Multi-evaluation samplers (heun, dpm_2, ...) always "
                   "compute their last 2."},
    "noise_reuse": {
        "tooltip": "What a skipped step uses instead of the model: hold = the last computed "
                   "noise (the paper's reuse); linear / quadratic = the noise predicted in σ "
                   "from the last 2 / 3 computed steps. Quadratic (the default) measured best with the "
                   "speed control; hold is the paper. On flow-matching models (Flux, Wan, Qwen-Image, "
                   "...) and on samplers that add fresh noise every step (ancestral, er_sde, sa_solver; "
                   "they predict the denoised image instead) quadratic answers linearly, measured "
                   "better there."},
    "per_sample": {
        "tooltip": "Decide per batch item instead of per batch: each prompt in the batch gets its "
                   "own skip path and the model runs only on the items that need a step. Off = "
                   "the paper (one decision for the whole batch)."},
    "speed": {
        "tooltip": "How much faster, the same on every model: about 1.25x / 1.5x / 1.75x / 2x / 2.5x / 3x "
                   "fewer model calls. 2x is the everyday setting; at 20-30 steps 1.75x is much closer to full "
                   "steps (mostly single skips where 2x skips pairs), 1.25x / 1.5x closer still; 2.5x / 3x "
                   "for drafts. The skips are planned from the sampler's σ schedule where they cost the "
                   "picture least, on most samplers the computed step after a skip corrects it, and a "
                   "skip whose predicted error is too large is moved to a later step. Ancestral samplers, "
                   "er_sde and sa_solver skip too (the denoised image is predicted, their own noise kept); "
                   "the Brownian-path SDE samplers (dpmpp_2m_sde, ...) run unskipped. "
                   "Skip Stats shows what ran. threshold (δ) = the paper's rule with the threshold above "
                   "(how workflows saved before this input behave). threshold 0 turns skipping off."},
}
_HOST_TYPES = {ParamKind.FLOAT: "FLOAT", ParamKind.INT: "INT", ParamKind.BOOL: "BOOLEAN"}


def _input_spec(param: AdaptiveParam) -> tuple:
    """ComfyUI's (type, options) of one parameter; a CHOICE is a combo (its list of values)."""
    host_type = list(param.choices) if param.kind is ParamKind.CHOICE else _HOST_TYPES[param.kind]
    options = {"default": param.widget_default}
    if param.bounds is not None:
        options["min"], options["max"] = param.bounds
    return (host_type, {**options, **WIDGET_OPTIONS[param.name]})


def _inputs_shown(node_input: NodeInput) -> dict:
    return {name: _input_spec(param) for name, param in ADAPTIVE_PARAMS.items() if param.node_input is node_input}


ADAPTIVE_INPUTS = _inputs_shown(NodeInput.REQUIRED)
ADAPTIVE_INPUT_NAMES = tuple(ADAPTIVE_INPUTS)

# Appended after every existing input (optional: API prompts without it still validate). A prompt
# or workflow that lacks it means the parameter's table default (SPEED_THRESHOLD for speed), what it
# meant when it was saved (build_config, and js/adaptive_inputs.js for the frontend); a newly placed
# node gets its placed_default (DEFAULT_SPEED).
ADAPTIVE_OPTIONAL_INPUTS = _inputs_shown(NodeInput.OPTIONAL)


# Core KSamplerAdvanced inputs that the host ships without a tooltip.
CORE_TOOLTIPS = {
    "add_noise": "enable: add the seed's noise first; disable when continuing a latent that still has noise.",
    "noise_seed": "The random seed used for creating the noise.",
    "start_at_step": "The step of the schedule where this sampler starts (later stages of a two-stage graph).",
    "end_at_step": "The step of the schedule where this sampler stops.",
    "return_with_leftover_noise": "enable: return the latent with its remaining noise for a next stage.",
}


def _with_tooltip(spec: tuple, name: str, known: dict[str, str]) -> tuple:
    options = dict(spec[1]) if len(spec) > 1 else {}
    if "tooltip" not in options and name in known:
        options["tooltip"] = known[name]
    return (spec[0], options, *spec[2:])


def with_adaptive_inputs(core_input_types: dict, tooltip_source: dict | None = None) -> dict:
    """A core node's INPUT_TYPES with ours appended to `required` (names and order kept).

    Core inputs without a tooltip get the one of the same input in `tooltip_source` (e.g. the
    core KSampler's) or from CORE_TOOLTIPS.
    """
    known = dict(CORE_TOOLTIPS)
    for values in (tooltip_source or {}).values():
        known.update({name: spec[1]["tooltip"] for name, spec in values.items()
                      if len(spec) > 1 and "tooltip" in spec[1]})
    types = {section: {name: _with_tooltip(spec, name, known) for name, spec in values.items()}
             for section, values in core_input_types.items()}
    types.setdefault("required", {}).update(ADAPTIVE_INPUTS)
    return types


def input_problem(steps=None, **adaptive) -> str | None:
    """The first bad value among the given inputs (None: all fine), for VALIDATE_INPUTS."""
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        return f"steps must be a whole number >= 1, got {steps!r}"
    return config_problem(steps=steps, **adaptive)


def build_config(steps: int | None = None, **adaptive) -> AdaptiveConfig:
    """The config for a node's inputs; raises ValueError naming the bad input before sampling."""
    for name in ADAPTIVE_OPTIONAL_INPUTS:  # absent: a prompt saved before the input existed
        adaptive.setdefault(name, ADAPTIVE_PARAMS[name].default)
    problem = input_problem(steps=steps, **adaptive)
    if problem:
        raise ValueError(f"AdaptiveDiffusion: {problem}")
    return AdaptiveConfig(**adaptive)


def validate_inputs_method(names: tuple[str, ...]) -> classmethod:
    """A node's VALIDATE_INPUTS over exactly `names` (each None when absent or linked), via input_problem.

    ComfyUI reads the method's parameter list (inspect.getfullargspec, execution.py in 0.3.75 and
    0.33.0) to decide which inputs to pass it, and skips its own min/max and list checks for those
    inputs. With **kwargs it would pass every input (model, latent, ...) and skip those checks for
    all of them (cfg, sampler_name, ...). So the method declares exactly these names as its
    signature (`__signature__`, which getfullargspec reports) and binds every call to it, so an
    unknown name is a TypeError as with a written-out parameter list.
    """
    signature = Signature([Parameter("cls", Parameter.POSITIONAL_OR_KEYWORD),
                           *(Parameter(name, Parameter.POSITIONAL_OR_KEYWORD, default=None) for name in names)])

    def validate(*args, **kwargs) -> bool | str:
        values = signature.bind(*args, **kwargs)
        values.apply_defaults()
        inputs = dict(values.arguments)
        del inputs["cls"]
        return input_problem(**inputs) or True

    validate.__signature__ = signature
    validate.__name__ = validate.__qualname__ = "VALIDATE_INPUTS"
    return classmethod(validate)
