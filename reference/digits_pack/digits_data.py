"""The training data: scikit-learn's bundled handwritten digits (no download), at 16×16."""
from __future__ import annotations

import torch


def load_digits_16() -> tuple[torch.Tensor, torch.Tensor]:
    """Images [N, 1, 16, 16] in [-1, 1] (bilinear upsampling of the 8×8 originals), labels [N]."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = torch.nn.functional.interpolate(images, size=(16, 16), mode="bilinear", align_corners=False)
    return images * 2 - 1, torch.tensor(digits.target, dtype=torch.long)


def split(count: int, seed: int, held_out: int = 297) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return order[held_out:], order[:held_out]


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shifts of up to one pixel (the data set is small)."""
    shift = torch.randint(-1, 2, (2,), generator=generator).tolist()
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1), value=-1.0)
    return padded[:, :, 1 + shift[0]:17 + shift[0], 1 + shift[1]:17 + shift[1]]
