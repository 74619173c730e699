"""What the benchmark scripts share: the results folder, the reading of a (model calls, PSNR) curve
at given calls, PSNR/SSIM against the full-step images (one value per image or the mean over
the prompts), and the labels of a PSNR-vs-calls plot panel. Plain Python (no ComfyUI, no torch import), so the report scripts use it too.

A script run by path (`python3 bench/x.py`) has only its own folder on sys.path: its first line
puts the repository root there, and everything else it shares comes from here.
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    import torch

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def interpolate(curve: Iterable[tuple[float, float]], calls: float) -> float | None:
    """A (calls, value) curve's value at `calls`, linear between neighbours; None outside the
    measured range (a one-point curve answers only at its own calls)."""
    points = sorted(curve)
    for (c0, p0), (c1, p1) in zip(points, points[1:]):
        if c0 <= calls <= c1:
            return p0 if c1 == c0 else p0 + (p1 - p0) * (calls - c0) / (c1 - c0)
    if len(points) == 1 and abs(points[0][0] - calls) < 1e-6:
        return points[0][1]
    return None


def psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB of an image in [0, 1]; 100 for an identical one."""
    mse = float(((image - reference) ** 2).mean())
    return 100.0 if mse == 0 else 10 * math.log10(1.0 / mse)


def ssim(image: torch.Tensor, reference: torch.Tensor) -> float:
    """SSIM with kornia's implementation (7×7 window: the images are 16×16)."""
    import kornia.metrics
    return float(kornia.metrics.ssim(image[None, None], reference[None, None], window_size=7).mean())


def mean_psnr(images: Iterable[torch.Tensor], references: Iterable[torch.Tensor],
              ceiling: float = math.inf) -> float:
    """Mean PSNR over the prompts, image i against reference i; `ceiling` caps each image's value
    first (a nearly identical image would otherwise weigh far above the rest)."""
    return statistics.mean(min(psnr(a, b), ceiling) for a, b in zip(images, references))


def mean_ssim(images: Iterable[torch.Tensor], references: Iterable[torch.Tensor]) -> float:
    """Mean SSIM over the prompts, image i against reference i."""
    return statistics.mean(ssim(a, b) for a, b in zip(images, references))


def psnr_panel(axes, title: str, xlabel: str, legend_size: int = 7) -> None:
    """A small PSNR-vs-calls panel's labels, grid and legend, the same in every bench plot."""
    axes.set_title(title, fontsize=9)
    axes.set_xlabel(xlabel, fontsize=8)
    axes.set_ylabel("PSNR vs full steps (dB)", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=legend_size, loc="lower right")
