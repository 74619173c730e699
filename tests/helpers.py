"""Shared test helpers: default sampler inputs and node calls on the tiny fixture models."""
from __future__ import annotations

from functools import lru_cache

from conftest import run_node
from devtools.graphs import ADAPTIVE

KSAMPLER_DEFAULTS = dict(seed=7, steps=10, cfg=4.0, sampler_name="euler", scheduler="normal", denoise=1.0)
ADAPTIVE_DEFAULTS = ADAPTIVE  # the same Adaptive settings as the server graphs


@lru_cache(maxsize=None)
def _fixture_inputs(kind: str, batch: int, size: int):
    from fixture_pack import tiny_models
    return (tiny_models.build_tiny_model(kind, seed=0),
            tiny_models.conditioning(kind, seed=1), tiny_models.conditioning(kind, seed=2),
            tiny_models.latent_shape(kind, batch, size))


def fixture(kind: str = "sd15", batch: int = 1, size: int = 8) -> dict:
    """model/positive/negative/latent_image for a tiny model (models built once per session)."""
    import torch
    model, positive, negative, shape = _fixture_inputs(kind, batch, size)
    return dict(model=model, positive=positive, negative=negative,
                latent_image={"samples": torch.zeros(shape)})


def ksampler(comfy, inputs: dict, **overrides):
    (latent,) = run_node(comfy, "KSampler", **{**KSAMPLER_DEFAULTS, **inputs, **overrides})
    return latent["samples"]


def adaptive(comfy, inputs: dict, **overrides):
    """Adaptive KSampler: returns (samples, trace)."""
    latent, trace = run_node(comfy, "AdaptiveKSampler",
                             **{**KSAMPLER_DEFAULTS, **ADAPTIVE_DEFAULTS, **inputs, **overrides})
    return latent["samples"], trace
