"""Tables and plots of the peers benchmark, from bench/results/peers_results.csv (no ComfyUI needed).

    python3 bench/peers_report.py [--out bench/results]

Writes peers_summary.md (budget table at ~40/60/80 % of the full step count in model calls, the summary for
25 and 50 steps on euler and dpmpp_2m, every row) and one peers_<steps>.png per step count (one
panel per sampler and scheduler, every method on it).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

if __name__ == "__main__":  # run by path; when imported, moving the root ahead of ComfyUI would shadow its nodes
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root; the rest: bench/common.py

from bench.common import RESULTS, interpolate  # noqa: E402

CSV_FIELDS = ["steps", "sampler", "scheduler", "method", "setting", "prompts", "impl", "decides", "full_calls",
              "model_calls", "psnr", "ssim", "psnr_own", "ssim_own", "seconds_per_image"]
TEXT_FIELDS = ("sampler", "scheduler", "method", "setting", "impl", "decides")
BUDGETS = (0.4, 0.6, 0.8)
PEER_METHODS = ("easycache", "lazycache", "fsampler", "zeus", "sada", "spectrum")
# The pack's one user control (`speed`) at the default predictor: the column the targets are read on.
from adaptive_core.config import DEFAULT_NOISE_REUSE  # noqa: E402  (the core's config: plain Python)
SPEED = f"speed_{DEFAULT_NOISE_REUSE}"
NAMES = {"speed_linear": "pack: speed (linear)", "speed_quadratic": "pack: speed (quadratic)", "fewer": "fewer steps", "easycache": "EasyCache", "lazycache": "LazyCache", "fsampler": "FSampler",
         "zeus": "ZEUS", "sada": "SADA", "spectrum": "Spectrum", "adaptive": "pack: δ/Cmax grid"}
STYLES = {"fewer": ("k", "o"), "easycache": ("#E69F00", "s"), "lazycache": ("#56B4E9", "^"),
          "fsampler": ("#CC79A7", "v"), "zeus": ("#999999", "P"), "sada": ("#8C564B", "X"),
          "spectrum": ("#009E73", "h"), "adaptive": ("#6A3D9A", "d"),
          "speed_linear": ("#0072B2", "D"), "speed_quadratic": ("#D55E00", "*")}


def read_rows(path: Path) -> list[dict]:
    with open(path) as handle:
        return [{k: (v if k in TEXT_FIELDS else float(v)) for k, v in row.items()} for row in csv.DictReader(handle)]


def score(row: dict) -> float:
    """A peer's PSNR for comparisons: FSampler and AccelDiff run their own sampler code, so they get
    the better of their score against ComfyUI's full-step result and against their own (generous
    to the peer)."""
    return max(row["psnr"], row["psnr_own"]) if row["impl"] != "comfy" else row["psnr"]


def frontier(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The best PSNR reachable with at most c calls, at each measured c (a method's curve)."""
    best, curve = float("-inf"), []
    for calls, value in sorted(points):
        best = max(best, value)
        if curve and curve[-1][0] == calls:
            curve[-1] = (calls, best)
        else:
            curve.append((calls, best))
    return curve


def configs(rows: list[dict]) -> list[tuple]:
    return list(dict.fromkeys((int(r["steps"]), r["sampler"], r["scheduler"]) for r in rows))


def skipping_rows(rows: list[dict], config: tuple) -> list[dict]:
    """The rows of one configuration that saved calls. A setting that skipped nothing is the
    reference itself (PSNR ∞, capped at 100): as a curve point it would inflate the interpolation."""
    return [r for r in rows if (int(r["steps"]), r["sampler"], r["scheduler"]) == config
            and r["model_calls"] < r["full_calls"] - 1e-6 and r["method"] != "full"]


def curves(rows: list[dict], config: tuple) -> dict[str, list[tuple[float, float]]]:
    mine = skipping_rows(rows, config)
    methods = dict.fromkeys(r["method"] for r in mine)
    return {m: frontier([(r["model_calls"], score(r)) for r in mine if r["method"] == m]) for m in methods}


def full_calls(rows: list[dict], config: tuple) -> float:
    return next(r["full_calls"] for r in rows if (int(r["steps"]), r["sampler"], r["scheduler"]) == config)


def best_peer(curve_of: dict, calls: float) -> tuple[str, float] | None:
    found = [(interpolate(curve_of[m], calls), m) for m in PEER_METHODS if m in curve_of]
    found = [(v, m) for v, m in found if v is not None]
    return (max(found)[1], max(found)[0]) if found else None


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def db(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} dB"


def budget_table(rows: list[dict], only: tuple | None = None) -> str:
    """Each method's PSNR interpolated at 40/60/80 % of the full step count in calls."""
    methods = ["fewer", *PEER_METHODS, "adaptive", SPEED]
    lines = ["| steps | sampler | scheduler | calls | " + " | ".join(NAMES[m] for m in methods)
             + " | speed − fewer | speed − best peer |", "|---" * (len(methods) + 6) + "|"]
    for config in configs(rows):
        if only and (config[0], config[1]) not in only:
            continue
        curve_of = curves(rows, config)
        for fraction in BUDGETS:
            calls = fraction * full_calls(rows, config)
            values = {m: interpolate(curve_of.get(m, []), calls) for m in methods}
            peer = best_peer(curve_of, calls)
            pack, fewer = values[SPEED], values["fewer"]
            lines.append(f"| {config[0]} | {config[1]} | {config[2]} | {calls:.1f} ({fraction:.0%}) | "
                         + " | ".join(fmt(values[m]) for m in methods)
                         + f" | {fmt(None if pack is None or fewer is None else pack - fewer)}"
                         + f" | {fmt(None if pack is None or peer is None else pack - peer[1])}"
                         + (f" ({NAMES[peer[0]]})" if peer else "") + " |")
    return "\n".join(lines)


def summary_table(rows: list[dict]) -> str:
    """25 and 50 steps, euler and dpmpp_2m: the pack's speed control (and its δ/Cmax grid) vs fewer
    steps vs the best peer."""
    lines = ["| steps | sampler | scheduler | calls | pack: speed | pack: δ/Cmax grid | fewer steps | best peer |",
             "|---|---|---|---|---|---|---|---|"]
    for config in configs(rows):
        if config[0] not in (25, 50) or config[1] not in ("euler", "dpmpp_2m"):
            continue
        curve_of = curves(rows, config)
        for fraction in BUDGETS:
            calls = fraction * full_calls(rows, config)
            peer = best_peer(curve_of, calls)
            lines.append(f"| {config[0]} | {config[1]} | {config[2]} | {calls:.1f} ({fraction:.0%}) | "
                         f"{db(interpolate(curve_of.get(SPEED, []), calls))} | "
                         f"{db(interpolate(curve_of.get('adaptive', []), calls))} | "
                         f"{db(interpolate(curve_of.get('fewer', []), calls))} | "
                         + (f"{peer[1]:.1f} dB ({NAMES[peer[0]]})" if peer else "n/a") + " |")
    return "\n".join(lines)


def every_row(rows: list[dict]) -> str:
    lines = ["| steps | sampler | scheduler | method | setting | decides | calls | PSNR | SSIM | PSNR vs own full steps |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        own = f"{r['psnr_own']:.1f}" if r["impl"] != "comfy" else ""
        lines.append(f"| {int(r['steps'])} | {r['sampler']} | {r['scheduler']} | {NAMES.get(r['method'], r['method'])} | "
                     f"{r['setting']} | {r['decides']} | {r['model_calls']:.1f} | {r['psnr']:.1f} | "
                     f"{r['ssim']:.3f} | {own} |")
    return "\n".join(lines)


def plot_steps(rows: list[dict], steps: int, path: Path) -> None:
    """One figure per step count: a panel per (sampler, scheduler), PSNR vs model calls."""
    from matplotlib.figure import Figure
    panels = [c for c in configs(rows) if c[0] == steps]
    samplers = list(dict.fromkeys(c[1] for c in panels))
    schedulers = list(dict.fromkeys(c[2] for c in panels))
    figure = Figure(figsize=(5.0 * len(schedulers), 3.4 * len(samplers)), dpi=80)
    for config in panels:
        axes = figure.add_subplot(len(samplers), len(schedulers),
                                  samplers.index(config[1]) * len(schedulers) + schedulers.index(config[2]) + 1)
        mine = skipping_rows(rows, config)
        for method, (colour, marker) in STYLES.items():
            points = [(r["model_calls"], score(r)) for r in mine if r["method"] == method]
            if points:
                axes.scatter(*zip(*points), color=colour, marker=marker, s=18, alpha=0.6)
                axes.plot(*zip(*frontier(points)), color=colour, label=NAMES[method], lw=1.2)
        full = full_calls(rows, config)
        for fraction in BUDGETS:
            axes.axvline(fraction * full, color="#bbbbbb", lw=0.6, ls=":")
        axes.set_title(f"{config[1]}, {config[2]}, {steps} steps ({full:.0f} calls)", fontsize=9)
        axes.set_xlabel("model calls per image", fontsize=8)
        axes.set_ylabel("PSNR vs full steps (dB)", fontsize=8)
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=6, loc="lower right")
    figure.tight_layout()
    figure.savefig(path)


def predictor_count(rows: list[dict]) -> str:
    """Quadratic vs linear with the speed control: cells (config, speed) where quadratic scores higher."""
    by_cell: dict[tuple, dict[str, float]] = {}
    for r in rows:
        if r["method"] in ("speed_linear", "speed_quadratic"):
            cell = (r["steps"], r["sampler"], r["scheduler"], r["setting"].split()[1])
            by_cell.setdefault(cell, {})[r["method"]] = score(r)
    pairs = [v for v in by_cell.values() if len(v) == 2]
    wins = sum(v["speed_quadratic"] > v["speed_linear"] for v in pairs)
    return f"With the speed control, quadratic noise reuse scores above linear in {wins} of {len(pairs)} cells (configuration × speed)."


def target_counts(rows: list[dict]) -> str:
    """The issue's targets on the speed control at 25 and 50 steps: +8 dB over fewer steps at 60 % of
    calls, +4 dB at 40 %, and not below the best peer from 40 to 80 %."""
    met = {"60": [0, 0], "40": [0, 0], "peer": [0, 0]}
    for config in configs(rows):
        if config[0] not in (25, 50):
            continue
        curve_of, full = curves(rows, config), full_calls(rows, config)
        speed, fewer = curve_of.get(SPEED, []), curve_of.get("fewer", [])
        for share, margin, key in ((0.6, 8.0, "60"), (0.4, 4.0, "40")):
            ours, base = interpolate(speed, share * full), interpolate(fewer, share * full)
            if ours is not None and base is not None:
                met[key][0] += ours >= base + margin
                met[key][1] += 1
        for share in (0.4, 0.6, 0.8):
            ours, peer = interpolate(speed, share * full), best_peer(curve_of, share * full)
            if ours is not None and peer is not None:
                met["peer"][0] += ours >= peer[1]
                met["peer"][1] += 1
    return (f"Targets at 25 and 50 steps (speed control, {NAMES[SPEED]}): ≥ fewer steps + 8 dB at 60 % of calls in "
            f"{met['60'][0]} of {met['60'][1]} configurations; ≥ fewer steps + 4 dB at 40 % in {met['40'][0]} of "
            f"{met['40'][1]}; ≥ the best peer at 40/60/80 % in {met['peer'][0]} of {met['peer'][1]} cells.")


def default_vs_fewer(rows: list[dict], setting: str = f"speed 2x {DEFAULT_NOISE_REUSE}") -> str:
    """The default speed against plain fewer steps at the same calls, in every configuration."""
    below, compared = [], 0
    for config in configs(rows):
        mine = [r for r in skipping_rows(rows, config) if r["setting"] == setting]
        fewer = curves(rows, config).get("fewer", [])
        if not mine or not fewer:
            continue
        base = interpolate(fewer, mine[0]["model_calls"])
        if base is None:
            continue
        compared += 1
        if mine[0]["psnr"] < base:
            below.append(f"{config[0]} {config[1]}/{config[2]} {mine[0]['psnr'] - base:+.1f} dB")
    return (f"The default ({setting}) against fewer steps at its own calls: below in {len(below)} of {compared} "
            f"configurations" + (f" ({', '.join(below)})." if below else "."))


def write_report(path: Path, out: Path, cfg: float = 3.0) -> None:
    rows = read_rows(path)
    prompts = sorted({int(r["prompts"]) for r in rows})
    header = (f"# Peers benchmark\n\nDigits reference model, cfg {cfg}, {'/'.join(map(str, prompts))} prompts "
              f"(noise × class). PSNR/SSIM against each prompt's full-step KSampler result with the same sampler "
              f"and scheduler. Model calls: real network forwards per image (counted at the UNet's first conv, "
              f"below every wrapper). Each method's curve is its best PSNR at ≤ c calls over its settings that "
              f"saved calls (a setting that skipped nothing is the reference itself), "
              f"interpolated linearly at the budget (n/a: outside its measured range). FSampler, ZEUS and SADA "
              f"run their own copies of the samplers (not ComfyUI's code; FSampler's dpmpp_2m differs visibly): "
              f"each is scored by the better of its PSNR against ComfyUI's full-step result and against its own "
              f"full-step output with skipping off ('no skips' rows); both are in the last table. Methods that decide per batch (EasyCache, LazyCache, FSampler adaptive, SADA) ran prompt "
              f"by prompt; the others (and the pack, per_sample on) in one batch.\n"
              f"Command: `python3 scripts/dev.py run bench/peers.py --peers /work/peers` (chunks: --steps, "
              f"--samplers, --schedulers); `python3 bench/peers_report.py` rewrites this file from the CSV.\n\n")
    route = out / "peers_fsampler_route.txt"
    if route.exists():  # written by `bench/peers.py --check-fsampler-route`
        header += ("FSampler's simple node against the route this benchmark drives it by (`--prompts 8 "
                   "--check-fsampler-route`):\n\n" + "".join(f"- {line}\n" for line in route.read_text().splitlines())
                   + "\n")
    header += target_counts(rows) + "\n" + default_vs_fewer(rows) + "\n" + predictor_count(rows) + "\n\n"
    text = (header + "## 25 and 50 steps, euler and dpmpp_2m: pack vs fewer steps vs best peer (PSNR dB)\n\n"
            + summary_table(rows) + "\n\n## Every configuration at ~40 / 60 / 80 % of the full step count in calls "
            "(PSNR dB)\n\n" + budget_table(rows) + "\n\n## Every row\n\n" + every_row(rows) + "\n")
    (out / "peers_summary.md").write_text(text)
    for steps in sorted({int(r["steps"]) for r in rows}):
        plot_steps(rows, steps, out / f"peers_{steps}.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    write_report(args.out / "peers_results.csv", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
