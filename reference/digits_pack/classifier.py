"""An independent digit classifier (small CNN), used only to measure the generated samples."""
from __future__ import annotations

from pathlib import Path

import torch

WEIGHTS = Path(__file__).with_name("digits_classifier.safetensors")


def make_classifier() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 4 * 4, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))


def train_classifier(images: torch.Tensor, labels: torch.Tensor, seed: int, epochs: int = 30) -> torch.nn.Module:
    from .digits_data import augment
    torch.manual_seed(seed)
    net = make_classifier()
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), 64):
            index = order[start:start + 64]
            loss = torch.nn.functional.cross_entropy(net(augment(images[index], generator)), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net.eval()


def load_classifier(path: Path = WEIGHTS) -> torch.nn.Module:
    import safetensors.torch
    net = make_classifier()
    net.load_state_dict(safetensors.torch.load_file(str(path)))
    return net.eval().requires_grad_(False)


@torch.no_grad()
def predict(net: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class indices for [B, 1, 16, 16] images in [-1, 1]."""
    return net(images.float().clamp(-1, 1)).argmax(dim=1)


def accuracy(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predict(net, images) == labels).float().mean())
