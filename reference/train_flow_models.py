"""Train the flow-matching digits models: one for the whole σ range and a Wan 2.2-like pair of
experts (high-noise above the boundary, low-noise below it). Deterministic, CPU.

    python3 scripts/dev.py run --host newest reference/train_flow_models.py [--steps N]

Same data as train_reference_model.py (scikit-learn's digits at 16×16). Each model learns the
velocity ε − x0 at σ drawn from a shifted logit-normal, cut to its own σ range, with the class
dropped to the null class 15 % of the time (for CFG). Writes the EMA weights as fp16 into
reference/digits_pack/ (flow_model.WEIGHTS). `--steps` is the whole-range model's; each expert
trains for fewer (STEP_SHARE), since each covers only part of the range. Check them with
`reference/check_reference_model.py --model flow` and `--model experts`.
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

from reference.digits_pack import digits_data  # noqa: E402
from reference.digits_pack.digits_model import NULL_CLASS, build_digits_model, class_tokens, init_weights  # noqa: E402
from reference.digits_pack.flow_model import (HIGH, LOW, SIGMA_RANGES, WEIGHTS, WHOLE,  # noqa: E402
                                              DigitsFlowModelConfig, shifted, unshifted)

# different seeds per model: the experts must not share their initialisation or their batches
SEEDS = {WHOLE: 20250301, HIGH: 20250302, LOW: 20250303}
STEP_SHARE = {WHOLE: 1.0, HIGH: 0.35, LOW: 0.6}  # the high-noise range is narrow and easy
LEARNING_RATE = 2e-3
EMA_DECAY = 0.995


def draw_sigmas(count: int, sigma_range: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """σ = shift(sigmoid(z)), z ~ N(0, 1) cut to the z that land in `sigma_range` (inverse CDF, so
    every draw counts)."""
    normal = torch.distributions.Normal(0.0, 1.0)
    low, high = (torch.logit(torch.tensor(unshifted(s)), eps=1e-6) for s in sigma_range)
    u_low, u_high = normal.cdf(low), normal.cdf(high)
    u = u_low + (u_high - u_low) * torch.rand(count, generator=generator)
    z = normal.icdf(u.clamp(1e-6, 1 - 1e-6))
    return shifted(torch.sigmoid(z)).clamp(1e-3, 1.0)


def velocity_loss(model, x0: torch.Tensor, labels: torch.Tensor, sigma: torch.Tensor,
                  generator: torch.Generator) -> torch.Tensor:
    """mse(predicted velocity, ε − x0) through ComfyUI's own apply_model (CONST: denoised = x − σ v)."""
    noise = torch.randn(x0.shape, generator=generator)
    s = sigma.view(-1, 1, 1, 1)
    x = (1 - s) * x0 + s * noise
    denoised = model.apply_model(x, sigma, c_crossattn=class_tokens(labels))
    return torch.nn.functional.mse_loss((x - denoised) / s, noise - x0)


def train(variant: str, images: torch.Tensor, labels: torch.Tensor, steps: int, batch: int) -> dict:
    seed = SEEDS[variant]
    model = build_digits_model(DigitsFlowModelConfig)
    init_weights(model, seed)
    model.diffusion_model.requires_grad_(True)  # ComfyUI's layers are built with requires_grad=False
    model.train()
    ema = {k: v.detach().clone() for k, v in model.diffusion_model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.diffusion_model.parameters(), lr=LEARNING_RATE, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    start = time.time()
    for step in range(steps):
        lr = LEARNING_RATE * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = torch.randint(0, len(images), (batch,), generator=generator)
        x0 = digits_data.augment(images[index], generator)
        y = labels[index].clone()
        y[torch.rand(batch, generator=generator) < 0.15] = NULL_CLASS
        loss = velocity_loss(model, x0, y, draw_sigmas(batch, SIGMA_RANGES[variant], generator), generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        update_ema(ema, model, min(EMA_DECAY, (1 + step) / (10 + step)))
        if step % 100 == 0 or step == steps - 1:
            print(f"{variant}: step {step:5d}  loss {loss.item():.4f}  lr {lr:.2e}  {time.time() - start:.0f}s",
                  flush=True)
    return ema


@torch.no_grad()
def update_ema(ema: dict, model, decay: float) -> None:
    for key, value in model.diffusion_model.state_dict().items():
        ema[key].mul_(decay).add_(value.detach(), alpha=1 - decay)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=850, help="the whole-range model's steps")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--only", choices=[WHOLE, HIGH, LOW], help="train only this one (for timing)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    images, labels = digits_data.load_digits_16()
    start = time.time()
    for variant in [args.only] if args.only else [WHOLE, HIGH, LOW]:
        steps = round(args.steps * STEP_SHARE[variant])
        print(f"training the {variant} flow model ({steps} steps, batch {args.batch})...", flush=True)
        ema = train(variant, images, labels, steps, args.batch)
        path = WEIGHTS[variant]
        safetensors.torch.save_file({k: v.half().contiguous() for k, v in ema.items()}, str(path))
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", flush=True)
    print(f"trained in {time.time() - start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
