"""Test-only ComfyUI nodes: tiny seeded models and random conditioning. Never shipped."""
from __future__ import annotations

import hashlib

import torch

from .hardening import NODE_CLASS_MAPPINGS as HARDENING_NODES
from .tiny_models import KINDS, build_tiny_model, conditioning, latent_shape


class AdaptiveTestTinyModel:
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"
    CATEGORY = "adaptive diffusion tests"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"kind": (list(KINDS),), "seed": ("INT", {"default": 0, "min": 0})}}

    def load(self, kind, seed):
        return (build_tiny_model(kind, seed),)


class AdaptiveTestConditioning:
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"
    CATEGORY = "adaptive diffusion tests"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"kind": (list(KINDS),), "seed": ("INT", {"default": 0, "min": 0})}}

    def encode(self, kind, seed):
        return (conditioning(kind, seed),)


class AdaptiveTestLatent:
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "make"
    CATEGORY = "adaptive diffusion tests"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"kind": (list(KINDS),),
                             "batch_size": ("INT", {"default": 1, "min": 1, "max": 16}),
                             "size": ("INT", {"default": 8, "min": 2, "max": 128})}}

    def make(self, kind, batch_size, size):
        return ({"samples": torch.zeros(latent_shape(kind, batch_size, size))},)


class AdaptiveTestLatentStats:
    """LATENT in, its numbers out in the UI (so server tests can compare results exactly)."""
    RETURN_TYPES = ()
    FUNCTION = "report"
    OUTPUT_NODE = True
    CATEGORY = "adaptive diffusion tests"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",)}}

    def report(self, samples):
        x = samples["samples"]
        # digest: bit-exact identity of the whole tensor, for "same result" comparisons.
        digest = hashlib.sha256(x.detach().float().contiguous().cpu().numpy().tobytes()).hexdigest()
        return {"ui": {"shape": list(x.shape), "sum": [float(x.double().sum())],
                       "abs_sum": [float(x.double().abs().sum())], "digest": [digest]}}


NODE_CLASS_MAPPINGS = {
    "AdaptiveTestTinyModel": AdaptiveTestTinyModel,
    "AdaptiveTestConditioning": AdaptiveTestConditioning,
    "AdaptiveTestLatent": AdaptiveTestLatent,
    "AdaptiveTestLatentStats": AdaptiveTestLatentStats,
    **HARDENING_NODES,
}
