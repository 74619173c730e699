"""How far a sampled latent is from a reference (the full-step result): the searches' yardsticks;
and the per-row norms the run measures on the device."""
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


def row_norms(t: torch.Tensor) -> torch.Tensor:
    """‖t_i‖ of each batch row, on the device (no host read)."""
    return t.reshape(t.shape[0], -1).norm(dim=1)


def row_relative(diff: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """‖diff_i‖ / ‖reference_i‖ of each batch row in float32, on the device."""
    return row_norms(diff.float()) / row_norms(reference.float()).clamp_min(1e-12)
