"""Host glue: attach AdaptiveDiffusion to a ComfyUI MODEL through the host's own hook points.

One wrapper per lifecycle point, no copies of any model's forward:
  OUTER_SAMPLE     creates the run's state (AdaptiveRun) and always drops it (try/finally);
  SAMPLER_SAMPLE   taps the sampler's step callback (step boundaries, live progress) and
                   turns skipping off for samplers that choose their own steps;
  PREDICT_NOISE    sees each evaluation's full latent: the skip decision for a step is taken here,
                   and its guided result: a skipped step is corrected by the next computed one;
  model_function_wrapper  answers each batched model call, per cond chunk, or computes it.
The run lives in the sampling call's own copy of model_options, never on the shared model.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

import torch

import comfy.model_patcher
import comfy.model_sampling
import comfy.patcher_extension as ext

from ..adaptive_core import AdaptiveConfig, AdaptiveRun, AdaptiveTrace, SkipPathError
from ..adaptive_core.decision import ScheduleStage
from . import live

log = logging.getLogger("AdaptiveDiffusion")

SETTINGS_KEY = "adaptive_diffusion"
RUN_KEY = "adaptive_diffusion_run"
WRAPPER_KEY = "adaptive_diffusion"
# Samplers that place their own steps (not the schedule's): run unskipped.
SELF_STEPPING = {"dpm_fast_function": "dpm_fast", "dpm_adaptive_function": "dpm_adaptive"}
# transformer_options keys where other step caches keep their state (core EasyCache and LazyCache).
OTHER_CACHE_OPTION_KEYS = ("easycache",)
# transformer_options entries that hold per-row data we can narrow, and ones that never do.
PER_ROW_OPTION_KEYS = ("sigmas",)
WHOLE_RUN_OPTION_KEYS = ("sample_sigmas", "wrappers", "callbacks", "uuids", "cond_or_uncond", RUN_KEY, SETTINGS_KEY)
# Entries holding attention/block patches: opaque callables that may hold batch-sized tensors
# (IPAdapter, regional masks), so a call carrying them is not split by rows.
PATCH_OPTION_KEYS = ("patches", "patches_replace")
_inside = threading.local()  # the run whose model call this thread is answering


@dataclass(frozen=True)
class PatchSettings:
    """What a patched model carries: the parameters and where finished traces go."""
    config: AdaptiveConfig
    on_trace: Callable[[AdaptiveTrace], None] | None = None
    label: str = ""
    skip_path: tuple[bool, ...] | None = None  # follow this mask instead of the criterion
    # With a speed: this mask instead of its plan, refusals and correction kept (bench/mask_search.py)
    forced_plan: tuple[bool, ...] | None = None
    # Where the sampler's steps sit in a schedule another sampler node shares (two-stage graphs)
    stage: ScheduleStage | None = None
    skip_brownian: bool = False  # skip Brownian-path samplers too (bench/stochastic.py measures it)

    def __deepcopy__(self, memo):  # ModelPatcher.clone deep-copies model_options
        return self


def apply_adaptive_diffusion(model, config: AdaptiveConfig,
                             on_trace: Callable[[AdaptiveTrace], None] | None = None,
                             label: str = "", skip_path: tuple[bool, ...] | None = None,
                             forced_plan: tuple[bool, ...] | None = None, stage: ScheduleStage | None = None,
                             skip_brownian: bool = False):
    """Return a clone of `model` that samples with AdaptiveDiffusion (the input is unchanged)."""
    if forced_plan is not None and (config.speed_factor is None or skip_path is not None):
        raise ValueError("forced_plan replaces a speed's plan: it needs a speed and no skip_path")
    patched = model.clone()
    options = patched.model_options.setdefault("transformer_options", {})
    if SETTINGS_KEY in options:
        log.warning("AdaptiveDiffusion was already applied to this model; the new settings replace it")
    options[SETTINGS_KEY] = PatchSettings(config, on_trace, label, skip_path,
                                          None if forced_plan is None else tuple(bool(s) for s in forced_plan), stage,
                                          skip_brownian)
    for wrapper_type, fn in ((ext.WrappersMP.OUTER_SAMPLE, outer_sample_wrapper),
                             (ext.WrappersMP.SAMPLER_SAMPLE, sampler_sample_wrapper),
                             (ext.WrappersMP.PREDICT_NOISE, predict_noise_wrapper)):
        patched.remove_wrappers_with_key(wrapper_type, WRAPPER_KEY)
        patched.add_wrapper_with_key(wrapper_type, WRAPPER_KEY, fn)
    previous = patched.model_options.get("model_function_wrapper")
    if isinstance(previous, AdaptiveModelFunction):
        previous = previous.inner
    elif previous is not None:
        log.info("AdaptiveDiffusion: chaining the model_function_wrapper already on this model")
    patched.set_model_unet_function_wrapper(AdaptiveModelFunction(previous))
    return patched


def other_step_caches(model_options: dict) -> list[str]:
    """Other step caches on these sampling options: core EasyCache/LazyCache, and wrappers whose
    key names a cache (other packs)."""
    transformer_options = model_options.get("transformer_options", {})
    found = {key for by_key in transformer_options.get("wrappers", {}).values() for key in by_key
             if key != WRAPPER_KEY and "cache" in str(key).lower()}
    found.update(key for key in OTHER_CACHE_OPTION_KEYS if key in transformer_options)
    if "lazycache" in found:
        found.discard("easycache")  # core LazyCache keeps its holder under "easycache" too
    return sorted(found)


def warn_about_other_caches(model_options: dict) -> None:
    caches = other_step_caches(model_options)
    if caches:
        log.warning("AdaptiveDiffusion: this model also has another step cache (%s); two step "
                    "caches at once are not meaningful (each one approximates outputs the other "
                    "already approximated): use one of them", ", ".join(caches))


def is_flow_matching(model_patcher) -> bool:
    """The model samples a flow (ComfyUI's CONST model sampling: SD3, Flux, Wan, Qwen-Image, ...)."""
    return isinstance(model_patcher.get_model_object("model_sampling"), comfy.model_sampling.CONST)


def outer_sample_wrapper(executor, *args, **kwargs):
    guider = executor.class_obj
    settings: PatchSettings = guider.model_options["transformer_options"][SETTINGS_KEY]
    sigmas = args[3] if len(args) > 3 else kwargs["sigmas"]
    if settings.skip_path is not None and len(settings.skip_path) != len(sigmas) - 1:
        raise SkipPathError(f"skip_path has {len(settings.skip_path)} steps but this sampler runs "
                            f"{len(sigmas) - 1}: use a path saved from a run with the same steps")
    run = AdaptiveRun(settings.config, sigmas.tolist(), label=settings.label, skip_path=settings.skip_path,
                      forced_plan=settings.forced_plan, stage=settings.stage, skip_brownian=settings.skip_brownian,
                      flow_matching=is_flow_matching(guider.model_patcher))
    if settings.config.enabled:
        warn_about_other_caches(guider.model_options)
    original_options = guider.model_options
    guider.model_options = comfy.model_patcher.create_model_options_clone(original_options)
    guider.model_options["transformer_options"][RUN_KEY] = run
    progress = live.Progress.for_current_node(run)
    try:
        return executor(*args, **kwargs)
    finally:
        guider.model_options = original_options
        trace = run.finish()
        log.info(trace.summary())
        for note in trace.notes:
            log.info("AdaptiveDiffusion: %s", note)
        progress.finished(trace)
        if settings.on_trace is not None:
            settings.on_trace(trace)


def sampler_sample_wrapper(executor, *args, **kwargs):
    # args: (guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar)
    extra_args = args[2] if len(args) > 2 else kwargs["extra_args"]
    run: AdaptiveRun | None = extra_args["model_options"]["transformer_options"].get(RUN_KEY)
    if run is None:
        return executor(*args, **kwargs)
    function_name = getattr(getattr(executor.class_obj, "sampler_function", None), "__name__", "")
    own_steps = SELF_STEPPING.get(function_name)
    if own_steps:
        run.disable_skipping(f"{own_steps} chooses its own steps; it ran unskipped")
    run.sampler_started(function_name)
    user_callback = args[3] if len(args) > 3 else kwargs.get("callback")
    progress = live.Progress.for_current_node(run)

    def callback(step, x0, x, total_steps):
        run.on_step(step)
        progress.step(step)
        if user_callback is not None:
            user_callback(step, x0, x, total_steps)

    if len(args) > 3:
        args = args[:3] + (callback,) + args[4:]
    else:
        kwargs["callback"] = callback
    return executor(*args, **kwargs)


def predict_noise_wrapper(executor, *args, **kwargs):
    # args: (x, timestep, model_options, seed)
    model_options = args[2] if len(args) > 2 else kwargs.get("model_options", {})
    run: AdaptiveRun | None = model_options.get("transformer_options", {}).get(RUN_KEY)
    if run is None:
        return executor(*args, **kwargs)
    x = args[0] if args else kwargs["x"]
    run.begin_evaluation(x)
    return run.end_evaluation(x, executor(*args, **kwargs))


class AdaptiveModelFunction:
    """The model_function_wrapper: skip or compute one batched call, then any wrapper it chains."""

    def __init__(self, inner: Callable | None):
        self.inner = inner

    def __deepcopy__(self, memo):
        return self

    # The host moves and loads what a model_function_wrapper holds through `to` and `models`
    # (ModelPatcher.model_patches_to / model_patches_models): pass both on to a chained wrapper.
    def to(self, device):
        moved = self.inner.to(device) if hasattr(self.inner, "to") else self.inner
        return self if moved is self.inner else AdaptiveModelFunction(moved)

    def models(self) -> list:
        return list(self.inner.models()) if hasattr(self.inner, "models") else []

    def __call__(self, apply_model: Callable, args: dict[str, Any]):
        transformer_options = args["c"].get("transformer_options", {})
        run: AdaptiveRun | None = transformer_options.get(RUN_KEY)
        if run is None or getattr(_inside, "run", None) is run:
            # Not ours, or we are already answering this call: a second patch of ours sits
            # below a foreign wrapper that chains to it. The call is counted and cached once.
            return self._compute(apply_model, args)
        _inside.run = run
        try:
            return self._answer(run, apply_model, args, transformer_options)
        finally:
            _inside.run = None

    def _answer(self, run: AdaptiveRun, apply_model: Callable, args: dict[str, Any], transformer_options: dict):
        cond_or_uncond = args.get("cond_or_uncond") or [0]
        uuids = transformer_options.get("uuids") or [None] * len(cond_or_uncond)
        keys = list(zip(cond_or_uncond, uuids))
        rows = rows_computer(lambda narrowed: self._compute(apply_model, narrowed), args)
        if rows is None and run.per_sample:
            run.fall_back_to_batch_decisions("this model's conditioning or patches cannot be split by batch rows")
            log.info("AdaptiveDiffusion: per_sample needs conditioning that can be split by rows; "
                     "this model's cannot (ControlNet, attention patches or batch-sized data), so the "
                     "whole batch shares each decision")
        return run.model_call(lambda: self._compute(apply_model, args), args["input"], args["timestep"],
                              keys, compute_rows=rows)

    def _compute(self, apply_model: Callable, args: dict[str, Any]):
        if self.inner is not None:
            return self.inner(apply_model, args)
        return apply_model(args["input"], args["timestep"], **args["c"])


def rows_computer(compute: Callable[[dict], Any], args: dict[str, Any]):
    """A function computing only some rows of this call, or None when the call cannot be split.

    Splitting needs every conditioning tensor to have one row per input row, and
    transformer_options narrowed with it (its `sigmas` has one value per latent row); ControlNet
    outputs, attention/block patches and any other batch-sized tensor keep the call whole.
    """
    total = args["input"].shape[0]
    conditioning = args["c"]
    if conditioning.get("control") is not None:
        return None
    for key, value in conditioning.items():
        if key == "transformer_options" or value is None:
            continue
        if not torch.is_tensor(value) or value.dim() == 0 or value.shape[0] != total:
            return None
    options = conditioning.get("transformer_options", {})
    chunks = max(len(args.get("cond_or_uncond") or [0]), 1)
    if not _options_can_be_narrowed(options, total, chunks):
        return None

    def compute_rows(indices: list[int]):
        index = torch.tensor(indices, device=args["input"].device)
        narrowed = {key: value.index_select(0, index.to(value.device)) if torch.is_tensor(value) else value
                    for key, value in conditioning.items()}
        if options:
            narrowed["transformer_options"] = _narrow_options(options, indices, total // chunks)
        return compute({**args, "input": args["input"].index_select(0, index),
                        "timestep": args["timestep"].index_select(0, index.to(args["timestep"].device)),
                        "c": narrowed})
    return compute_rows


def _options_can_be_narrowed(options: dict, total: int, chunks: int) -> bool:
    if any(options.get(key) for key in PATCH_OPTION_KEYS):
        return False
    for key, value in options.items():
        if key in WHOLE_RUN_OPTION_KEYS:
            continue
        if key in PER_ROW_OPTION_KEYS:
            if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] not in (1, total // chunks):
                return False
            continue
        if _holds_batch_tensor(value, {total, total // chunks}):
            return False
    return True


def _holds_batch_tensor(value, batch_sizes: set[int], depth: int = 0) -> bool:
    """A tensor whose first dimension is a batch size, somewhere in nested dicts/lists."""
    if torch.is_tensor(value):
        return value.dim() > 0 and value.shape[0] in batch_sizes and value.shape[0] > 1
    if depth > 4:
        return False
    if isinstance(value, dict):
        return any(_holds_batch_tensor(v, batch_sizes, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_batch_tensor(v, batch_sizes, depth + 1) for v in value)
    return False


def _narrow_options(options: dict, indices: list[int], rows: int) -> dict:
    """transformer_options for the computed rows: per-row entries keep only those rows."""
    latent_rows = sorted({i % rows for i in indices})
    narrowed = dict(options)
    for key in PER_ROW_OPTION_KEYS:
        value = options.get(key)
        if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == rows > 1:
            narrowed[key] = value.index_select(0, torch.tensor(latent_rows, device=value.device))
    return narrowed
