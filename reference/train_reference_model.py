"""Train the reference digits model and its independent classifier (deterministic, CPU).

    python3 scripts/dev.py run reference/train_reference_model.py [--steps N]

Data: the 1797 8×8 handwritten digits that ship inside scikit-learn (no download), upsampled to
16×16 and scaled to [-1, 1]. Writes reference/digits_pack/digits_unet.safetensors (EMA weights,
fp16) and reference/digits_pack/digits_classifier.safetensors, and prints the quality check: the
classifier's accuracy on held-out real digits and on samples drawn with 50 full euler steps.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from devtools.inprocess import boot_comfyui  # noqa: E402

boot_comfyui()

import safetensors.torch  # noqa: E402

from reference.digits_pack import classifier, digits_data  # noqa: E402
from reference.digits_pack.digits_model import (NULL_CLASS, WEIGHTS, build_digits_model,  # noqa: E402
                                                class_tokens, init_weights)

SEED = 20241122


def train_unet(images: torch.Tensor, labels: torch.Tensor, steps: int, batch: int) -> dict:
    model = build_digits_model()
    init_weights(model, SEED)
    model.train()
    sampling = model.model_sampling
    ema = {k: v.detach().clone() for k, v in model.diffusion_model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.diffusion_model.parameters(), lr=1e-3, weight_decay=0.0)
    generator = torch.Generator().manual_seed(SEED)
    start = time.time()
    for step in range(steps):
        lr = 1e-3 * min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(math.pi * step / steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = torch.randint(0, len(images), (batch,), generator=generator)
        x0 = digits_data.augment(images[index], generator)
        y = labels[index].clone()
        y[torch.rand(batch, generator=generator) < 0.15] = NULL_CLASS  # learn the unconditional too
        t = torch.randint(0, len(sampling.sigmas), (batch,), generator=generator)
        sigma = sampling.sigmas[t]
        noise = torch.randn(x0.shape, generator=generator)
        x_noisy = x0 + sigma.view(-1, 1, 1, 1) * noise
        denoised = model.apply_model(x_noisy, sigma, c_crossattn=class_tokens(y))
        predicted_noise = (x_noisy - denoised) / sigma.view(-1, 1, 1, 1)
        loss = torch.nn.functional.mse_loss(predicted_noise, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for key, value in model.diffusion_model.state_dict().items():
                ema[key].mul_(decay).add_(value.detach(), alpha=1 - decay)
        if step % 250 == 0 or step == steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}  lr {lr:.2e}  {time.time() - start:.0f}s", flush=True)
    return ema


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    images, labels = digits_data.load_digits_16()
    train, held_out = digits_data.split(len(images), SEED)
    print(f"digits: {len(images)} images, training the classifier...", flush=True)
    net = classifier.train_classifier(images[train], labels[train], SEED)
    accuracy = classifier.accuracy(net, images[held_out], labels[held_out])
    print(f"classifier accuracy on {len(held_out)} held-out real digits: {accuracy:.1%}")
    safetensors.torch.save_file(net.state_dict(), str(classifier.WEIGHTS))
    print(f"training the diffusion model ({args.steps} steps, batch {args.batch})...", flush=True)
    ema = train_unet(images, labels, args.steps, args.batch)
    safetensors.torch.save_file({k: v.half().contiguous() for k, v in ema.items()}, str(WEIGHTS))
    print(f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
