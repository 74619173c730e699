"""Fidelity benchmark: AdaptiveDiffusion vs fewer steps, core EasyCache and LazyCache.

    python3 scripts/dev.py run bench/fidelity.py [--samplers euler,dpmpp_2m] [--prompts 64]

On the trained digits model, per sampler: the full-step result of every prompt is the reference;
each setting is scored by real model calls, PSNR and SSIM against it, classifier accuracy and wall
time. Writes bench/results/fidelity_<steps>.csv (one row per setting and sampler), a Pareto plot per
sampler and bench/results/fidelity_<steps>.md with the comparison at equal model calls.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root; the rest: bench/common.py

from reference.harness import Bench, Prompt, prompts  # noqa: E402
from bench.common import RESULTS, mean_psnr, mean_ssim, psnr  # noqa: E402
from bench.report import MODES, plot, write_csv, write_summary  # noqa: E402

import torch  # noqa: E402  (after the harness has put ComfyUI in place)



@dataclass
class Setting:
    method: str                     # full | fewer | adaptive | easycache | lazycache
    label: str
    node_type: str = "KSampler"
    inputs: dict = field(default_factory=dict)
    cache_threshold: float | None = None


ADAPTIVE_FIXED = dict(max_skip_steps=4, warmup_steps=4, keep_last_steps=1)


def settings_for(steps: int, thresholds: list[float], modes: list[str], fewer: list[int],
                 cache_thresholds: list[float]) -> list[Setting]:
    grid = [Setting("fewer", f"{n} steps", inputs={"steps": n}) for n in fewer if n < steps]
    for mode in modes:
        for delta in thresholds:  # per_sample: every prompt its own decisions, as if run alone
            grid.append(Setting("adaptive", f"{mode} δ={delta}", "AdaptiveKSampler", {
                "steps": steps, "threshold": delta, **ADAPTIVE_FIXED, "noise_reuse": mode, "per_sample": True}))
    grid.append(Setting("paper", "paper: hold δ=0.01 keep_last=0", "AdaptiveKSampler", {
        "steps": steps, "threshold": 0.01, **ADAPTIVE_FIXED, "keep_last_steps": 0, "noise_reuse": "hold",
        "per_sample": True}))
    for node, method in (("EasyCache", "easycache"), ("LazyCache", "lazycache")):
        for threshold in cache_thresholds:
            grid.append(Setting(method, f"{node} {threshold}", inputs={"steps": steps}, cache_threshold=threshold))
    return grid


def run_setting(bench: Bench, setting: Setting, sampler: str, cfg: float, batch: list[Prompt],
                references: torch.Tensor) -> dict:
    common = dict(sampler_name=sampler, scheduler="normal", cfg=cfg, **setting.inputs)
    if setting.cache_threshold is not None:
        model = bench.with_cache_node("EasyCache" if setting.method == "easycache" else "LazyCache",
                                      setting.cache_threshold)
        result = bench.sample_one_by_one(batch, node_type="KSampler", model=model, **common)
    else:
        result = bench.sample(batch, setting.node_type, **common)
    digits = torch.tensor([p.digit for p in batch])
    return {"sampler": sampler, "method": setting.method, "setting": setting.label,
            "model_calls": statistics.mean(result.model_calls),
            "psnr": mean_psnr(result.images, references),
            "ssim": mean_ssim(result.images, references),
            "accuracy": float((bench.predicted_digits(result.images) == digits).float().mean()),
            "seconds": result.seconds, "distinct_masks": len(set(result.masks)) if result.masks[0] else 0}


def check_per_sample_equivalence(bench: Bench, batch: list[Prompt], steps: int, cfg: float) -> str:
    """Per-sample decisions in one batch must equal each prompt run alone (batch 1)."""
    settings = dict(sampler_name="euler", scheduler="normal", cfg=cfg, steps=steps, **ADAPTIVE_FIXED,
                    threshold=0.01, noise_reuse="linear", per_sample=True)
    together = bench.sample(batch, "AdaptiveKSampler", **settings)
    alone = bench.sample_one_by_one(batch, node_type="AdaptiveKSampler", **settings)
    same = sum(a == b for a, b in zip(together.masks, alone.masks))
    worst = min(psnr(a, b) for a, b in zip(together.images, alone.images))
    return (f"per-sample batch of {len(batch)} vs the same prompts one by one: {same}/{len(batch)} "
            f"identical skip paths, lowest PSNR between the two {worst:.1f} dB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samplers", default="euler,euler_ancestral,dpmpp_2m,ddim,uni_pc,heun")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--cfg", type=float, default=3.0)
    parser.add_argument("--thresholds", default="0.005,0.01,0.02")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--fewer", default="10,14,20,30")
    parser.add_argument("--cache-thresholds", default="0.1,0.3")
    parser.add_argument("--tag", default="", help="suffix of the output files")
    args = parser.parse_args()
    bench = Bench()
    batch = prompts(args.prompts)
    grid = settings_for(args.steps, [float(v) for v in args.thresholds.split(",")], args.modes.split(","),
                        [int(v) for v in args.fewer.split(",")],
                        [float(v) for v in args.cache_thresholds.split(",")])
    RESULTS.mkdir(exist_ok=True)
    stem = f"fidelity_{args.steps}{args.tag}"
    args.equivalence = check_per_sample_equivalence(bench, batch[:8], args.steps, args.cfg)
    print(args.equivalence, flush=True)
    rows: list[dict] = []
    for sampler in args.samplers.split(","):
        full = Setting("full", f"{args.steps} steps (reference)", inputs={"steps": args.steps})
        references = bench.sample(batch, sampler_name=sampler, scheduler="normal", cfg=args.cfg,
                                  steps=args.steps).images
        for setting in [full, *grid]:
            row = run_setting(bench, setting, sampler, args.cfg, batch, references)
            rows.append(row)
            print(f"{sampler:16s} {setting.label:32s} calls {row['model_calls']:6.1f}  PSNR {row['psnr']:6.2f}  "
                  f"SSIM {row['ssim']:.3f}  acc {row['accuracy']:.0%}  {row['seconds'] * 1000:.0f} ms/image",
                  flush=True)
        mine = [r for r in rows if r["sampler"] == sampler]
        write_csv(mine, RESULTS / f"{stem}_{sampler}.csv")
        plot(mine, sampler, args.steps, RESULTS / f"{stem}_{sampler}.png")
    write_summary(stem, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
