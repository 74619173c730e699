"""The speed control against plain fewer steps, on the trained digits model.

    python3 scripts/dev.py run bench/studies/decision.py --samplers euler --schedulers normal,karras \
        --steps 20,25,30,50 [--prompts 16] [--speeds 1.5x,2x,3x] [--modes linear,quadratic]

Per sampler, scheduler and step count: the full-step result of every prompt is the reference; each
speed setting of Adaptive KSampler (per_sample: every prompt decides alone) is scored by model calls
and PSNR against it, and plain KSampler runs at fewer steps give the curve it must beat at equal
calls (linear interpolation between step counts). Appends one CSV row per setting to
bench/results/decision.csv and prints the comparison.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root; the rest: bench/common.py

from reference.harness import Bench, prompts  # noqa: E402
from bench.common import RESULTS, interpolate, mean_psnr, mean_ssim  # noqa: E402

FIELDS = ["sampler", "scheduler", "steps", "setting", "model_calls", "psnr", "ssim", "fewer_psnr_at_calls",
          "delta_vs_fewer", "speedup"]


def score(result, references) -> tuple[float, float, float]:
    return (statistics.mean(result.model_calls),
            mean_psnr(result.images, references), mean_ssim(result.images, references))


def compare(bench: Bench, batch, sampler: str, scheduler: str, steps: int, speeds: list[str],
            modes: list[str], cfg: float) -> list[dict]:
    common = dict(sampler_name=sampler, scheduler=scheduler, cfg=cfg)
    full = bench.sample(batch, steps=steps, **common)
    references, full_calls = full.images, statistics.mean(full.model_calls)
    fewer = [(full_calls, 100.0)]
    for n in sorted({max(2, round(steps * f)) for f in (0.25, 0.33, 0.4, 0.5, 0.6, 0.7, 0.8)}):
        calls, value, _ = score(bench.sample(batch, steps=n, **common), references)
        fewer.append((calls, value))
    rows = []
    for mode in modes:
        for speed in speeds:
            inputs = dict(threshold=0.01, max_skip_steps=4, warmup_steps=4, keep_last_steps=1,
                          noise_reuse=mode, per_sample=True, speed=speed)
            calls, value, similarity = score(bench.sample(batch, "AdaptiveKSampler", steps=steps, **common, **inputs),
                                             references)
            other = interpolate(fewer, calls)
            rows.append({"sampler": sampler, "scheduler": scheduler, "steps": steps, "setting": f"{speed} {mode}",
                         "model_calls": round(calls, 2), "psnr": round(value, 2), "ssim": round(similarity, 4),
                         "fewer_psnr_at_calls": None if other is None else round(other, 2),
                         "delta_vs_fewer": None if other is None else round(value - other, 2),
                         "speedup": round(full_calls / calls, 2)})
            print(f"{sampler:10s} {scheduler:7s} {steps:3d} {speed:14s} {mode:9s} calls {calls:5.1f}/{full_calls:.0f} "
                  f"({full_calls / calls:.2f}x)  PSNR {value:5.1f}  fewer steps {other if other is None else round(other, 1)}"
                  f"  Δ {'n/a' if other is None else f'{value - other:+.1f}'} dB", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samplers", default="euler")
    parser.add_argument("--schedulers", default="normal")
    parser.add_argument("--steps", default="25,50")
    parser.add_argument("--speeds", default="1.5x,2x,3x")
    parser.add_argument("--modes", default="linear")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--cfg", type=float, default=3.0)
    parser.add_argument("--out", default=str(RESULTS / "decision.csv"))
    args = parser.parse_args()
    bench, batch = Bench(), prompts(args.prompts)
    out = Path(args.out)
    new_file = not out.exists()
    with out.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        if new_file:
            writer.writeheader()
        for sampler in args.samplers.split(","):
            for scheduler in args.schedulers.split(","):
                for steps in (int(s) for s in args.steps.split(",")):
                    writer.writerows(compare(bench, batch, sampler, scheduler, steps, args.speeds.split(","),
                                             args.modes.split(","), args.cfg))
                    handle.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
