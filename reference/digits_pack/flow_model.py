"""Flow-matching versions of the digits model, shaped like today's models (SD3/Flux/Wan).

The same small UNet and one-hot class conditioning as the ε model (digits_model.py), but a model
config whose model type is FLOW: ComfyUI then samples it with ModelSamplingDiscreteFlow and CONST
(x_σ = (1 − σ) x0 + σ ε, σ in (0, 1], the network predicts the velocity ε − x0).

Three weight files: one model for the whole σ range, and a Wan 2.2-like pair of experts, the
high-noise expert trained only on σ above BOUNDARY and the low-noise expert only below it (each
with a small overlap), from different seeds.
"""
from __future__ import annotations

from pathlib import Path

import torch

import comfy.model_base
import comfy.model_patcher

from .digits_model import DigitsModelConfig, load_digits_model

SHIFT = 3.0  # SD3's default shift; ModelSamplingSD3 can patch another at run time
BOUNDARY = 0.875  # Wan 2.2 T2V's expert switch, on the shifted schedule
OVERLAP = 0.025  # each expert also sees this far past the boundary, as split schedules land near it

WHOLE, HIGH, LOW = "whole range", "high-noise expert", "low-noise expert"
VARIANTS = (WHOLE, HIGH, LOW)
HERE = Path(__file__).resolve().parent
WEIGHTS = {WHOLE: HERE / "digits_flow_unet.safetensors",
           HIGH: HERE / "digits_flow_high_noise.safetensors",
           LOW: HERE / "digits_flow_low_noise.safetensors"}
SIGMA_RANGES = {WHOLE: (0.0, 1.0), HIGH: (BOUNDARY - OVERLAP, 1.0), LOW: (0.0, BOUNDARY + OVERLAP)}


class DigitsFlowModelConfig(DigitsModelConfig):
    sampling_settings = {"shift": SHIFT, "multiplier": 1000}

    def model_type(self, state_dict, prefix=""):
        return comfy.model_base.ModelType.FLOW


def load_flow_model(variant: str = WHOLE) -> comfy.model_patcher.ModelPatcher:
    """One of VARIANTS as a ComfyUI MODEL."""
    return load_digits_model(WEIGHTS[variant], DigitsFlowModelConfig)


def shifted(t: torch.Tensor, shift: float = SHIFT) -> torch.Tensor:
    """ComfyUI's time_snr_shift: the σ of an unshifted time t."""
    return shift * t / (1 + (shift - 1) * t)


def unshifted(sigma: float, shift: float = SHIFT) -> float:
    """The inverse of `shifted`."""
    return sigma / (shift - (shift - 1) * sigma)


def expert_switch_step(sigmas: torch.Tensor, boundary: float = BOUNDARY) -> int:
    """How many steps of a schedule (σ_0 > … > σ_n) the high-noise expert takes: those that
    start at or above the boundary (Wan 2.2's rule), the first stage of the two KSamplerAdvanced.
    With shift 3 and 20 `simple` steps step 6 starts at 0.875 itself; float rounding (0.87499994)
    gives it to the low-noise expert, which is trained up to BOUNDARY + OVERLAP anyway."""
    return int((sigmas[:-1] >= boundary).sum())
