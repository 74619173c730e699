"""Tables and plots of the fidelity benchmark, from its CSVs (no ComfyUI needed).

    python3 bench/report.py [--steps 50]   # rewrites bench/results/fidelity_<steps>.md
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

if __name__ == "__main__":  # run by path; when imported, moving the root ahead of ComfyUI would shadow its nodes
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root; the rest: bench/common.py

from bench.common import RESULTS, interpolate  # noqa: E402

MODES = ("hold", "linear", "quadratic")


def comparison_table(rows: list[dict]) -> str:
    """Markdown: every AdaptiveDiffusion setting against the alternatives at equal model calls."""
    lines = ["| sampler | setting | calls | PSNR | SSIM | acc. | Δ vs fewer steps | Δ vs EasyCache | Δ vs LazyCache |",
             "|---|---|---|---|---|---|---|---|---|"]
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        mine = [r for r in rows if r["sampler"] == sampler]
        curves = {m: [(r["model_calls"], r["psnr"]) for r in mine if r["method"] == m] for m in ("fewer", "easycache", "lazycache")}
        # (The full-step run is the reference itself, PSNR ∞: it is no point to interpolate to.)
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


def mode_curve(rows: list[dict], mode: str) -> list[tuple[float, float]]:
    return [(r["model_calls"], r["psnr"]) for r in rows
            if r["method"] == "adaptive" and r["setting"].startswith(mode + " ")]


def cell(psnr: float | None, calls: float) -> str:
    return "n/a" if psnr is None else f"{psnr:.1f} dB @ {calls:.1f}"


def summary_tables(rows: list[dict], deltas: tuple[float, ...] = (0.01, 0.02)) -> str:
    """Two compact tables for docs/benchmark.md: the modes against fewer steps, and against the caches."""
    lines = ["| sampler | δ | fewer steps, same calls | hold (paper) | linear | quadratic |",
             "|---|---|---|---|---|---|"]
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        mine = [r for r in rows if r["sampler"] == sampler]
        fewer = [(r["model_calls"], r["psnr"]) for r in mine if r["method"] == "fewer"]
        for delta in deltas:
            modes = {m: next((r for r in mine if r["setting"] == f"{m} δ={delta}"), None) for m in MODES}
            if not all(modes.values()):
                continue
            reference = modes["linear"]["model_calls"]
            lines.append(f"| {sampler} | {delta} | {cell(interpolate(fewer, reference), reference)} | " +
                         " | ".join(cell(modes[m]["psnr"], modes[m]["model_calls"]) for m in MODES) + " |")
    lines += ["", "| sampler | core cache | its PSNR @ calls | AdaptiveDiffusion linear, same calls | quadratic, same calls |",
              "|---|---|---|---|---|"]
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        mine = [r for r in rows if r["sampler"] == sampler]
        for r in mine:
            if r["method"] in ("easycache", "lazycache"):
                calls = r["model_calls"]
                lines.append(f"| {sampler} | {r['setting']} | {cell(r['psnr'], calls)} | "
                             f"{cell(interpolate(mode_curve(mine, 'linear'), calls), calls)} | "
                             f"{cell(interpolate(mode_curve(mine, 'quadratic'), calls), calls)} |")
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


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_csvs(stem: str) -> list[dict]:
    """Every sampler's rows measured so far (one CSV per sampler, so samplers can run separately)."""
    rows = []
    for path in sorted(RESULTS.glob(f"{stem}_*.csv")):
        with open(path) as handle:
            for row in csv.DictReader(handle):
                rows.append({k: (v if k in ("sampler", "method", "setting") else float(v)) for k, v in row.items()})
    return rows


def write_summary(stem: str, args) -> None:
    header = (f"Digits reference model, {args.steps} steps, cfg {args.cfg}, scheduler normal, "
              f"{args.prompts} prompts (noise × class); PSNR/SSIM against each prompt's {args.steps}-step "
              f"result; acc. = the independent classifier's accuracy; Δ = AdaptiveDiffusion's PSNR minus "
              f"the alternative's, interpolated at the same model calls (n/a: outside the alternative's "
              f"measured range). AdaptiveDiffusion runs with per_sample on, so each prompt takes its own "
              f"decisions as in a batch-1 run ({args.equivalence}); EasyCache/LazyCache run prompt by "
              f"prompt. Per-sampler CSVs and Pareto plots are beside this file.\n"
              f"Command: `python3 scripts/dev.py run bench/fidelity.py --steps {args.steps} "
              f"--prompts {args.prompts} --samplers <one or more>`\n\n")
    rows = read_csvs(stem)
    (RESULTS / f"{stem}.md").write_text(header + summary_tables(rows) + "\n\nEvery setting:\n\n"
                                        + comparison_table(rows) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    stem = f"fidelity_{args.steps}"
    rows = read_csvs(stem)
    old = (RESULTS / f"{stem}.md").read_text().split("\n\n", 1)[0] if (RESULTS / f"{stem}.md").exists() else ""
    (RESULTS / f"{stem}.md").write_text(old + "\n\n" + summary_tables(rows) + "\n\nEvery setting:\n\n"
                                        + comparison_table(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
