"""Fidelity benchmark: AdaptiveDiffusion vs fewer steps, core EasyCache and LazyCache.

    python3 scripts/dev.py run bench/fidelity.py [--samplers euler,dpmpp_2m] [--prompts 64]

On the trained digits model, per sampler: the full-step result of every prompt is the reference;
each setting is scored by real model calls, PSNR and SSIM against it, classifier accuracy and wall
time. Writes bench/results/fidelity_<steps>.csv (one row per setting and sampler), a Pareto plot per
sampler and bench/results/fidelity_<steps>.md with the comparison at equal model calls.
"""
from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Bench, Prompt, prompts, psnr, ssim  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MODES = ("hold", "linear", "quadratic")


@dataclass
class Setting:
    method: str                     # full | fewer | adaptive | easycache | lazycache
    label: str
    node_type: str = "KSampler"
    inputs: dict = field(default_factory=dict)
    cache_threshold: float | None = None


def settings_for(steps: int, thresholds: list[float], modes: list[str], fewer: list[int]) -> list[Setting]:
    grid = [Setting("fewer", f"{n} steps", inputs={"steps": n}) for n in fewer if n < steps]
    for mode in modes:
        for delta in thresholds:
            grid.append(Setting("adaptive", f"{mode} δ={delta}", "AdaptiveKSampler", {
                "steps": steps, "threshold": delta, "max_skip_steps": 4, "warmup_steps": 4,
                "keep_last_steps": 1, "noise_reuse": mode}))
    grid.append(Setting("paper", "paper: hold δ=0.01 keep_last=0", "AdaptiveKSampler", {
        "steps": steps, "threshold": 0.01, "max_skip_steps": 4, "warmup_steps": 4,
        "keep_last_steps": 0, "noise_reuse": "hold"}))
    for node, method in (("EasyCache", "easycache"), ("LazyCache", "lazycache")):
        for threshold in (0.05, 0.1, 0.2, 0.4):
            grid.append(Setting(method, f"{node} {threshold}", inputs={"steps": steps}, cache_threshold=threshold))
    return grid


def run_setting(bench: Bench, setting: Setting, sampler: str, cfg: float, batch: list[Prompt],
                references: dict) -> dict:
    model = None
    if setting.cache_threshold is not None:
        model = bench.with_cache_node("EasyCache" if setting.method == "easycache" else "LazyCache",
                                      setting.cache_threshold)
    rows = []
    for prompt in batch:
        result = bench.sample(prompt, setting.node_type, model=model, sampler_name=sampler,
                              scheduler="normal", cfg=cfg, **setting.inputs)
        reference = references[prompt]
        rows.append((result.model_calls, psnr(result.image, reference), ssim(result.image, reference),
                     bench.predicted_digit(result.image) == prompt.digit, result.seconds, result.mask))
    calls, psnrs, ssims, correct, seconds, masks = zip(*rows)
    return {"sampler": sampler, "method": setting.method, "setting": setting.label,
            "model_calls": statistics.mean(calls), "psnr": statistics.mean(psnrs),
            "ssim": statistics.mean(ssims), "accuracy": statistics.mean(correct),
            "seconds": statistics.mean(seconds), "distinct_masks": len(set(masks)) if masks[0] else 0}


def interpolate(points: list[tuple[float, float]], calls: float) -> float | None:
    """PSNR of a (calls, PSNR) curve at `calls`, linear between neighbours; None outside."""
    points = sorted(points)
    for (c0, p0), (c1, p1) in zip(points, points[1:]):
        if c0 <= calls <= c1:
            return p0 if c1 == c0 else p0 + (p1 - p0) * (calls - c0) / (c1 - c0)
    return None


def comparison_table(rows: list[dict]) -> str:
    """Markdown: every AdaptiveDiffusion setting against the alternatives at equal model calls."""
    lines = ["| sampler | setting | calls | PSNR | SSIM | acc. | Δ vs fewer steps | Δ vs EasyCache | Δ vs LazyCache |",
             "|---|---|---|---|---|---|---|---|---|"]
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        mine = [r for r in rows if r["sampler"] == sampler]
        full = next(r for r in mine if r["method"] == "full")
        curves = {m: [(r["model_calls"], r["psnr"]) for r in mine if r["method"] == m] for m in ("fewer", "easycache", "lazycache")}
        curves["fewer"].append((full["model_calls"], full["psnr"]))
        for r in mine:
            if r["method"] not in ("adaptive", "paper"):
                continue
            deltas = []
            for method in ("fewer", "easycache", "lazycache"):
                other = interpolate(curves[method], r["model_calls"])
                deltas.append("n/a" if other is None else f"{r['psnr'] - other:+.1f} dB")
            lines.append(f"| {sampler} | {r['setting']} | {r['model_calls']:.1f} | {r['psnr']:.1f} | "
                         f"{r['ssim']:.3f} | {r['accuracy']:.0%} | " + " | ".join(deltas) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], sampler: str, steps: int, path: Path) -> None:
    from matplotlib.figure import Figure
    figure = Figure(figsize=(6.4, 4.2), dpi=110)
    axes = figure.add_subplot()
    mine = [r for r in rows if r["sampler"] == sampler and r["method"] != "full"]
    styles = {"fewer": ("fewer steps", "k", "o"), "easycache": ("EasyCache", "#E69F00", "s"),
              "lazycache": ("LazyCache", "#56B4E9", "^")}
    for method, (name, colour, marker) in styles.items():
        points = sorted((r["model_calls"], r["psnr"]) for r in mine if r["method"] == method)
        if points:
            axes.plot(*zip(*points), marker=marker, color=colour, label=name)
    for mode, colour in zip(MODES, ("#CC79A7", "#009E73", "#0072B2")):
        points = sorted((r["model_calls"], r["psnr"]) for r in mine
                        if r["method"] == "adaptive" and r["setting"].startswith(mode))
        if points:
            axes.plot(*zip(*points), marker="D", color=colour, label=f"AdaptiveDiffusion {mode}")
    paper = [r for r in mine if r["method"] == "paper"]
    if paper:
        axes.scatter([paper[0]["model_calls"]], [paper[0]["psnr"]], marker="*", s=120, color="#D55E00",
                     label="paper setting", zorder=5)
    axes.set_xlabel("model calls per image")
    axes.set_ylabel(f"PSNR vs {steps}-step result (dB)")
    axes.set_title(f"{sampler}, {steps} steps: quality at equal model calls")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samplers", default="euler,euler_ancestral,dpmpp_2m,ddim,uni_pc,heun")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--cfg", type=float, default=3.0)
    parser.add_argument("--thresholds", default="0.01,0.02,0.05,0.1")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--fewer", default="8,10,12,15,20,25,30")
    parser.add_argument("--tag", default="", help="suffix of the output files")
    args = parser.parse_args()
    bench = Bench()
    batch = prompts(args.prompts)
    thresholds = [float(v) for v in args.thresholds.split(",")]
    grid = settings_for(args.steps, thresholds, args.modes.split(","), [int(v) for v in args.fewer.split(",")])
    RESULTS.mkdir(exist_ok=True)
    stem = f"fidelity_{args.steps}{args.tag}"
    rows: list[dict] = []
    for sampler in args.samplers.split(","):
        full = Setting("full", f"{args.steps} steps (reference)", inputs={"steps": args.steps})
        references = {p: bench.sample(p, sampler_name=sampler, scheduler="normal", cfg=args.cfg,
                                      steps=args.steps).image for p in batch}
        for setting in [full, *grid]:
            row = run_setting(bench, setting, sampler, args.cfg, batch, references)
            rows.append(row)
            print(f"{sampler:16s} {setting.label:32s} calls {row['model_calls']:6.1f}  PSNR {row['psnr']:6.2f}  "
                  f"SSIM {row['ssim']:.3f}  acc {row['accuracy']:.0%}  {row['seconds'] * 1000:.0f} ms", flush=True)
        plot(rows, sampler, args.steps, RESULTS / f"{stem}_{sampler}.png")
        write_outputs(rows, stem, args)
    return 0


def write_outputs(rows: list[dict], stem: str, args) -> None:
    with open(RESULTS / f"{stem}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    header = (f"Digits reference model, {args.steps} steps, cfg {args.cfg}, scheduler normal, "
              f"{args.prompts} prompts (seed × class); PSNR/SSIM against each prompt's {args.steps}-step "
              f"result; Δ = AdaptiveDiffusion's PSNR minus the alternative's, interpolated at the same "
              f"model calls (n/a: outside the alternative's measured range).\n"
              f"Command: `python3 scripts/dev.py run bench/fidelity.py --steps {args.steps} "
              f"--samplers {args.samplers} --prompts {args.prompts}`\n\n")
    (RESULTS / f"{stem}.md").write_text(header + comparison_table(rows) + "\n")


if __name__ == "__main__":
    sys.exit(main())
