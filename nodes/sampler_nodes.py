"""Adaptive KSampler, Adaptive KSampler (Advanced) and the MODEL patch node."""
from __future__ import annotations

import nodes as comfy_nodes

from ..adaptive_core import AdaptiveConfig, AdaptiveTrace, SkipPath
from ..adaptive_core.decision import ScheduleStage
from .hooks import apply_adaptive_diffusion
from .inputs import (
    ADAPTIVE_INPUTS,
    ADAPTIVE_OPTIONAL_INPUTS,
    build_config,
    validate_inputs_method,
    with_adaptive_inputs,
)

CATEGORY = "sampling/adaptive diffusion"
TRACE_TYPE = "ADAPTIVE_TRACE"
SKIP_PATH_INPUT = {"skip_path": ("SKIP_PATH", {
    "tooltip": "Optional: follow this saved skip path (Load Skip Path) instead of the criterion."})}
# Every node's optional inputs, in order: skip_path first (it came first), then the newer ones.
OPTIONAL_INPUTS = {**SKIP_PATH_INPUT, **ADAPTIVE_OPTIONAL_INPUTS}
# The inputs each node's VALIDATE_INPUTS checks itself (ComfyUI leaves their range checks to it).
ADAPTIVE_VALIDATED = (*ADAPTIVE_INPUTS, *ADAPTIVE_OPTIONAL_INPUTS)


def _sample_with_trace(model, config: AdaptiveConfig, sample, skip_path: SkipPath | None = None,
                       steps: int = 0, stage: ScheduleStage | None = None) -> dict:
    """Run `sample(patched_model)` and return the node result with the run's trace and UI data."""
    if skip_path is not None and steps > 0:
        skip_path.check_length(steps)  # before sampling starts
    traces: list[AdaptiveTrace] = []
    patched = apply_adaptive_diffusion(model, config, on_trace=traces.append,
                                       skip_path=skip_path.skip if skip_path is not None else None, stage=stage)
    (latent,) = sample(patched)
    trace = traces[-1] if traces else AdaptiveTrace(config, notes=["nothing was sampled"])
    ui = {"adaptive_mask": [trace.mask_bits()],
          "adaptive_summary": [trace.summary()],
          "adaptive_calls": [trace.model_calls, trace.cached_calls]}
    return {"ui": ui, "result": (latent, trace)}


def schedule_stage(model, steps: int, sampler_name: str, scheduler: str, denoise: float, start: int,
                   stage_steps: int) -> ScheduleStage:
    """This node's share of the whole σ schedule, as the host's KSampler makes that schedule (the
    other stage's node, sampling the rest of it, makes the same one)."""
    import comfy.samplers
    whole = comfy.samplers.KSampler(model, steps=steps, device="cpu", sampler=sampler_name, scheduler=scheduler,
                                    denoise=denoise, model_options=model.model_options).sigmas
    return ScheduleStage(tuple(float(s) for s in whole.tolist()), start, stage_steps)


class AdaptiveKSampler:
    DESCRIPTION = ("KSampler that skips redundant model evaluations (AdaptiveDiffusion, NeurIPS "
                   "2024, extended): a skipped step gets the noise extrapolated from the computed "
                   "steps instead of running the model. `speed` asks for a share of the model calls "
                   "(2x = half) on any model; threshold 0 gives KSampler's result exactly.")
    RETURN_TYPES = ("LATENT", TRACE_TYPE)
    RETURN_NAMES = ("LATENT", "trace")
    OUTPUT_TOOLTIPS = ("The denoised latent.",
                       "Which steps were computed or skipped; connect Skip Mask Preview or Skip Stats.")
    FUNCTION = "sample"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        types = with_adaptive_inputs(comfy_nodes.KSampler.INPUT_TYPES())
        types.setdefault("optional", {}).update(OPTIONAL_INPUTS)
        return types

    VALIDATE_INPUTS = validate_inputs_method(("steps", *ADAPTIVE_VALIDATED))

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative,
               latent_image, denoise=1.0, skip_path=None, **adaptive):
        config = build_config(steps=steps, **adaptive)
        return _sample_with_trace(model, config, lambda patched: comfy_nodes.common_ksampler(
            patched, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
            denoise=denoise), skip_path, steps if denoise > 0 else 0)


class AdaptiveKSamplerAdvanced:
    DESCRIPTION = ("KSampler (Advanced) with AdaptiveDiffusion step skipping: start/end steps and "
                   "leftover noise for base + refiner and two-stage video graphs (Wan 2.2's two experts). "
                   "With a speed, two of these nodes that split one schedule plan it as one, so the speed "
                   "holds over the whole graph; the second model's first steps are computed.")
    RETURN_TYPES = AdaptiveKSampler.RETURN_TYPES
    RETURN_NAMES = AdaptiveKSampler.RETURN_NAMES
    OUTPUT_TOOLTIPS = AdaptiveKSampler.OUTPUT_TOOLTIPS
    FUNCTION = "sample"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        types = with_adaptive_inputs(comfy_nodes.KSamplerAdvanced.INPUT_TYPES(),
                                     tooltip_source=comfy_nodes.KSampler.INPUT_TYPES())
        types.setdefault("optional", {}).update(OPTIONAL_INPUTS)
        return types

    VALIDATE_INPUTS = AdaptiveKSampler.VALIDATE_INPUTS

    def sample(self, model, add_noise, noise_seed, steps, cfg, sampler_name, scheduler, positive,
               negative, latent_image, start_at_step, end_at_step, return_with_leftover_noise,
               denoise=1.0, skip_path=None, **adaptive):
        config = build_config(steps=steps, **adaptive)
        stage_steps = max(0, min(end_at_step, steps) - start_at_step)
        stage = None
        if config.speed_factor is not None and skip_path is None and 0 < stage_steps < steps:
            stage = schedule_stage(model, steps, sampler_name, scheduler, denoise, start_at_step, stage_steps)
        return _sample_with_trace(model, config, lambda patched: comfy_nodes.common_ksampler(
            patched, noise_seed, steps, cfg, sampler_name, scheduler, positive, negative,
            latent_image, denoise=denoise, disable_noise=add_noise == "disable",
            start_step=start_at_step, last_step=end_at_step,
            force_full_denoise=return_with_leftover_noise != "enable"), skip_path, stage_steps, stage)


class AdaptiveDiffusionPatch:
    DESCRIPTION = ("Adds AdaptiveDiffusion step skipping to a MODEL, for SamplerCustom, "
                   "SamplerCustomAdvanced or any sampler node. A summary of each run goes to the log "
                   "and the live mask to the sampler node.")
    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The model with AdaptiveDiffusion; the input model is unchanged.",)
    FUNCTION = "patch"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL", {"tooltip": "The model to accelerate."}),
                             **ADAPTIVE_INPUTS},
                "optional": dict(OPTIONAL_INPUTS)}

    VALIDATE_INPUTS = validate_inputs_method(ADAPTIVE_VALIDATED)

    def patch(self, model, skip_path=None, **adaptive):
        path = skip_path.skip if skip_path is not None else None
        return (apply_adaptive_diffusion(model, build_config(**adaptive), skip_path=path),)

