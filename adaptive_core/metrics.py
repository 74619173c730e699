"""How far a sampled latent is from a reference (the full-step result): the searches' yardsticks."""
from __future__ import annotations

import math

import torch


def relative_error(latent: torch.Tensor, reference: torch.Tensor) -> float:
    """‖x − x_ref‖ / ‖x_ref‖ over the whole latent."""
    reference = reference.float()
    return float((latent.float() - reference).norm() / reference.norm().clamp_min(1e-12))


def latent_psnr(latent: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB against the reference, peak = the reference's value range."""
    reference = reference.float()
    mse = float(((latent.float() - reference) ** 2).mean())
    peak = float(reference.max() - reference.min()) or 1.0
    return math.inf if mse == 0 else 10 * math.log10(peak ** 2 / mse)
