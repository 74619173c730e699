"""Why the speed control reuses heun's corrector call: the idea alone, on the reference model.

heun evaluates the model twice a step: at (x_k, σ_k), and at the Euler guess x̃_(k+1) at σ_(k+1).
The next step's first call is at (x_(k+1), σ_(k+1)): the same σ, a latent only a corrector apart.
This script runs heun with that first call answered from the previous corrector (as x̂0 itself,
"same x̂0", or as its noise ε, "same ε", the pack's way) from step 4 on, the last `keep` steps
computed, against plain heun with fewer steps at its calls; PSNR against full-step heun.

    python3 scripts/dev.py run bench/studies/heun_reuse.py [--steps 25 --prompts 4]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root; the rest: bench/common.py

from reference.harness import Bench, prompts  # noqa: E402
from bench.common import mean_psnr  # noqa: E402

import torch  # noqa: E402


def heun_reusing_the_corrector(reuse: str, keep: int, first: int = 4):
    """A k-diffusion-style heun whose first call of step k (first <= k < steps - keep) is answered
    from the corrector call of step k-1 (`reuse`: "x0" or "eps")."""
    @torch.no_grad()
    def sample(model, x, sigmas, extra_args=None, callback=None, disable=None):
        extra_args, s_in, corrector = extra_args or {}, x.new_ones([x.shape[0]]), None
        for i in range(len(sigmas) - 1):
            s, s_next = sigmas[i], sigmas[i + 1]
            if corrector is not None and first <= i < len(sigmas) - 1 - keep:
                x_guess, denoised_guess = corrector
                # same σ: x̂0 as is, or ε = (x̃ - x̂0(x̃)) / σ applied to this x
                denoised = denoised_guess if reuse == "x0" else x - (x_guess - denoised_guess)
            else:
                denoised = model(x, s * s_in, **extra_args)
            d = (x - denoised) / s
            if callback is not None:
                callback({"x": x, "i": i, "sigma": s, "sigma_hat": s, "denoised": denoised})
            if s_next == 0:
                x, corrector = x + d * (s_next - s), None
                continue
            x_guess = x + d * (s_next - s)
            denoised_guess = model(x_guess, s_next * s_in, **extra_args)
            x = x + (d + (x_guess - denoised_guess) / s_next) / 2 * (s_next - s)
            corrector = (x_guess, denoised_guess)
        return x
    return sample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--prompts", type=int, default=4)
    args = parser.parse_args(argv)
    import comfy.samplers
    bench, batch = Bench(), prompts(args.prompts)
    for scheduler in ("normal", "karras"):
        core = dict(cfg=3.0, sampler_name="heun", scheduler=scheduler)
        reference = bench.sample(batch, steps=args.steps, **core).images

        def score(result) -> float:
            return mean_psnr(result.images, reference)
        fewer = {}
        for steps in range(args.steps // 2, args.steps):
            result = bench.sample(batch, steps=steps, **core)
            fewer[result.model_calls[0]] = score(result)
        (sigmas,) = bench.call("BasicScheduler", model=bench.model, scheduler=scheduler, steps=args.steps, denoise=1.0)
        for reuse in ("x0", "eps"):
            for keep in (1, 2):
                result = bench.sample_custom(batch, comfy.samplers.KSAMPLER(heun_reusing_the_corrector(reuse, keep)), sigmas)
                calls = result.model_calls[0]
                nearest = min(fewer, key=lambda c: abs(c - calls))
                print(f"heun {scheduler} {args.steps} steps, same {'x̂0' if reuse == 'x0' else 'ε'}, last {keep} computed: "
                      f"{calls:.0f} calls, {score(result):.1f} dB; fewer steps at {nearest:.0f} calls: {fewer[nearest]:.1f} dB",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
