"""Oracle Skip Path and Calibrate δ: whole-run searches built on repeated sampling."""
from __future__ import annotations

from dataclasses import dataclass, replace

import nodes as comfy_nodes

from ..adaptive_core import AdaptiveConfig, AdaptiveTrace, SkipPath
from ..adaptive_core.calibration import calibrate_threshold
from ..adaptive_core.metrics import latent_psnr
from ..adaptive_core.oracle import greedy_oracle
from .hooks import apply_adaptive_diffusion
from .inputs import ADAPTIVE_INPUTS, build_config
from .sampler_nodes import CATEGORY, TRACE_TYPE

CORE_INPUTS = ("model", "seed", "steps", "cfg", "sampler_name", "scheduler", "positive", "negative",
               "latent_image", "denoise")


@dataclass
class Probe:
    """One sampler setup that can be run repeatedly with different skip paths, δ or seeds."""
    inputs: dict
    config: AdaptiveConfig

    def run(self, config: AdaptiveConfig | None = None, skip=None, seed: int | None = None):
        traces: list[AdaptiveTrace] = []
        model = apply_adaptive_diffusion(self.inputs["model"], config or self.config, traces.append,
                                         skip_path=None if skip is None else tuple(skip))
        values = {**self.inputs, "model": model, "seed": self.inputs["seed"] if seed is None else seed}
        (latent,) = comfy_nodes.common_ksampler(
            values["model"], values["seed"], values["steps"], values["cfg"], values["sampler_name"],
            values["scheduler"], values["positive"], values["negative"], values["latent_image"],
            denoise=values["denoise"])
        return latent["samples"], traces[-1]

    def full(self, seed: int | None = None):
        """The full-step latent and its trace (δ = 0: nothing skipped)."""
        return self.run(replace(self.config, threshold=0.0), seed=seed)


def _search_inputs(extra: dict) -> dict:
    """KSampler's inputs, the Adaptive settings a search keeps fixed, then the search's own."""
    required = comfy_nodes.KSampler.INPUT_TYPES()["required"]
    fixed = {k: v for k, v in ADAPTIVE_INPUTS.items() if k not in ("threshold", "per_sample")}
    return {"required": {**{name: required[name] for name in CORE_INPUTS}, **fixed, **extra}}


def _probe(core: dict, noise_reuse, max_skip_steps, warmup_steps, keep_last_steps) -> Probe:
    config = build_config(steps=core["steps"], threshold=0.01, max_skip_steps=max_skip_steps,
                          warmup_steps=warmup_steps, keep_last_steps=keep_last_steps, noise_reuse=noise_reuse)
    return Probe(core, config)


class AdaptiveOracleSkipPath:
    DESCRIPTION = ("Finds the skip path the paper uses as ground truth for this exact model, seed and "
                   "prompt: walks the steps in order and keeps each skip whose final latent stays "
                   "within the tolerance of the full-step result. Costs one sampling run per "
                   "candidate step (bounded by max_rollouts) — a tool for studying δ, not for speed.")
    RETURN_TYPES = ("SKIP_PATH", TRACE_TYPE)
    RETURN_NAMES = ("skip_path", "trace")
    FUNCTION = "search"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return _search_inputs({
            "tolerance": ("FLOAT", {"default": 0.02, "min": 0.0, "max": 10.0, "step": 0.001,
                                    "tooltip": "Largest accepted ‖x − x_full‖ / ‖x_full‖ of the final latent."}),
            "max_rollouts": ("INT", {"default": 60, "min": 1, "max": 1000,
                                     "tooltip": "At most this many trial runs (one per candidate step)."})})

    def search(self, tolerance, max_rollouts, noise_reuse, max_skip_steps, warmup_steps, keep_last_steps,
               **core):
        probe = _probe(core, noise_reuse, max_skip_steps, warmup_steps, keep_last_steps)
        reference, full_trace = probe.full()
        total = core["steps"] if core["denoise"] > 0 else 0
        # The full run learnt the sampler's rhythm: a multi-evaluation sampler computes its last 2
        # steps whatever a path says, so they are no candidates (no rollout spent, no false skip).
        result = greedy_oracle(lambda skip: probe.run(skip=skip)[0], reference, total, probe.config,
                               tolerance, max_rollouts, kept_last_steps=full_trace.kept_last_steps)
        _, trace = probe.run(skip=result.skip)
        trace.label = "oracle"
        trace.notes.append(f"oracle: {result.rollouts} rollouts, final relative error {result.error:.4f} "
                           f"(tolerance {tolerance})")
        return (SkipPath(tuple(result.skip), "oracle"), trace)


class AdaptiveCalibrateThreshold:
    DESCRIPTION = ("Chooses δ for this model and sampler by bisection on probe runs: the largest δ that "
                   "keeps a PSNR target against full steps, or the smallest δ that fits a model-call "
                   "budget. Connect the FLOAT to the threshold input of an Adaptive node.")
    RETURN_TYPES = ("FLOAT", "STRING")
    RETURN_NAMES = ("threshold", "report")
    FUNCTION = "calibrate"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return _search_inputs({
            "target": (["psnr", "model_calls"], {"tooltip": "What target_value means."}),
            "target_value": ("FLOAT", {"default": 30.0, "min": 0.0, "max": 10000.0, "step": 0.1,
                                       "tooltip": "psnr: minimum dB against full steps (latent space); "
                                                  "model_calls: most calls per run."}),
            "probe_seeds": ("INT", {"default": 2, "min": 1, "max": 16,
                                    "tooltip": "Seeds seed, seed+1, ... averaged per probe."}),
            "iterations": ("INT", {"default": 8, "min": 1, "max": 20,
                                   "tooltip": "Bisection steps (each runs every probe seed)."})})

    def calibrate(self, target, target_value, probe_seeds, iterations, noise_reuse, max_skip_steps,
                  warmup_steps, keep_last_steps, **core):
        probe = _probe(core, noise_reuse, max_skip_steps, warmup_steps, keep_last_steps)
        config = probe.config
        seeds = [core["seed"] + i for i in range(probe_seeds)]
        references = {seed: probe.full(seed)[0] for seed in seeds}

        def evaluate(delta: float) -> tuple[float, float]:
            runs = [probe.run(replace(config, threshold=delta), seed=seed) for seed in seeds]
            psnr = sum(min(latent_psnr(latent, references[seed]), 100.0)
                       for (latent, _), seed in zip(runs, seeds)) / len(seeds)
            calls = sum(trace.model_calls for _, trace in runs) / len(seeds)
            return psnr, calls

        result = calibrate_threshold(evaluate, target, target_value, iterations)
        lines = [f"δ = {result.threshold:.5f}: PSNR {result.psnr:.2f} dB, {result.model_calls:.1f} model calls "
                 f"(target {target} {'>=' if target == 'psnr' else '<='} {target_value}, seeds {seeds})"]
        lines += [f"  probe δ={d:.5f}: {p:.2f} dB, {c:.1f} calls" for d, p, c in result.probes]
        return (result.threshold, "\n".join(lines))
