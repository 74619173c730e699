"""Tables and plots of the peers benchmark, from bench/results/peers_results.csv (no ComfyUI needed).

    python3 bench/peers_report.py [--out bench/results]

Writes peers_summary.md, one part per reference model (`model` column: eps, the ε-prediction digits
UNet; flow, the flow-matching digits model): the default speed against fewer steps and the best peer at
its own calls, the stochastic samplers (which peers run them, which do not), the budget table at
~40/60/80 % of the full step count in model calls, the summary (ε: 25 and 50 steps on euler and
dpmpp_2m; flow: every configuration), every row; and one plot per model and step count (one panel per
sampler and scheduler, every method on it): peers_<steps>.png for the ε model, peers_flow_<steps>.png
for the flow model. Rows written before the `model` column existed are ε rows.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

if __name__ == "__main__":  # run by path; when imported, moving the root ahead of ComfyUI would shadow its nodes
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root; the rest: bench/common.py

from bench.common import RESULTS, interpolate, psnr_panel  # noqa: E402

CSV_FIELDS = ["model", "steps", "sampler", "scheduler", "method", "setting", "prompts", "impl", "decides", "full_calls",
              "model_calls", "psnr", "ssim", "psnr_own", "ssim_own", "seconds_per_image"]
TEXT_FIELDS = ("model", "sampler", "scheduler", "method", "setting", "impl", "decides")
BUDGETS = (0.4, 0.6, 0.8)
PEER_METHODS = ("easycache", "lazycache", "fsampler", "zeus", "sada", "acceldiff_adaptive", "spectrum")
MODELS = {"eps": "ε-prediction digits UNet (reference.harness.Bench())",
          "flow": "flow-matching digits model (velocity prediction, shift 3 through ComfyUI's flow model sampling; "
                  "Bench(model=\"flow\"))"}
FAILURES = "peers_failures.csv"  # bench/peers.py: a peer setting that raised (model, config, method, setting, error)
FAILURE_FIELDS = ["model", "steps", "sampler", "scheduler", "method", "setting", "error"]
# The samplers each peer runs, read from its code (None: any sampler, a model patch). bench/peers.py
# drives a peer only on these; the report names the others ("does not run <sampler>").
# FSampler (nodes.py sampler list): euler, res_2m, res_2s, ddim, dpmpp_2m, dpmpp_2s, lms, res_multistep,
#   res_multistep_ancestral, heun, gradient_estimation: no uni_pc, no euler_ancestral by name; its
#   ancestral step is its euler with add_noise (eta) 1.0 (the ε-form ancestral step with
#   official_comfy, on the flow model too), noise from torch's global generator.
# AccelDiff (nodes.py support_sampler / SADA_SUPPORT_SAMPLER and the sample_* functions of
#   sampler/zeus.py, sada.py, adaptivediff.py): no uni_pc anywhere; SADA has no res_multistep (its node
#   would silently run euler instead) and its euler_ancestral draws noise from torch's global generator.
PEER_SAMPLERS: dict[str, frozenset | None] = {
    "easycache": None, "lazycache": None, "spectrum": None,
    "fsampler": frozenset({"euler", "ddim", "dpmpp_2m", "heun", "res_multistep", "euler_ancestral"}),
    "zeus": frozenset({"euler", "heun", "dpmpp_2m", "ddim", "res_multistep", "euler_ancestral"}),
    "sada": frozenset({"euler", "heun", "dpmpp_2m", "ddim", "euler_ancestral"}),
    "acceldiff_adaptive": frozenset({"euler", "heun", "dpmpp_2m", "ddim", "res_multistep", "euler_ancestral"}),
}
from adaptive_core.samplers import SamplerNoise, sampler_noise  # noqa: E402  (plain Python: names only)


def stochastic(sampler: str) -> bool:
    """A sampler that adds noise to the latent every step (fresh or from one Brownian path)."""
    return sampler_noise(sampler) is not SamplerNoise.NONE


def runs(method: str, sampler: str) -> bool:
    """Whether a peer runs this sampler (the pack and the core nodes run every sampler)."""
    supported = PEER_SAMPLERS.get(method)
    return supported is None or sampler in supported
# The pack's one user control (`speed`) at the default predictor: the column the targets are read on.
from adaptive_core.config import DEFAULT_NOISE_REUSE  # noqa: E402  (the core's config: plain Python)
SPEED = f"speed_{DEFAULT_NOISE_REUSE}"
NAMES = {"speed_linear": "pack: speed (linear)", "speed_quadratic": "pack: speed (quadratic)", "fewer": "fewer steps", "easycache": "EasyCache", "lazycache": "LazyCache", "fsampler": "FSampler",
         "zeus": "ZEUS", "sada": "SADA", "acceldiff_adaptive": "AccelDiff AdaptiveDiff", "spectrum": "Spectrum",
         "adaptive": "pack: δ/Cmax grid"}
STYLES = {"fewer": ("k", "o"), "easycache": ("#E69F00", "s"), "lazycache": ("#56B4E9", "^"),
          "fsampler": ("#CC79A7", "v"), "zeus": ("#999999", "P"), "sada": ("#8C564B", "X"),
          "acceldiff_adaptive": ("#7F7F00", "p"), "spectrum": ("#009E73", "h"), "adaptive": ("#6A3D9A", "d"),
          "speed_linear": ("#0072B2", "D"), "speed_quadratic": ("#D55E00", "*")}


def read_rows(path: Path) -> list[dict]:
    """The CSV's rows, numbers as floats; a row without a model (written before the column) is an ε row."""
    with open(path) as handle:
        return [{"model": "eps", **{k: (v if k in TEXT_FIELDS else float(v)) for k, v in row.items()
                                    if not (k == "model" and not v)}} for row in csv.DictReader(handle)]


def migrate(path: Path) -> bool:
    """Give a CSV written before the `model` column that column (value eps, the only model then), in
    CSV_FIELDS order, so new rows can be appended; True when the file was rewritten."""
    if not path.exists():
        return False
    with open(path) as handle:
        reader = csv.DictReader(handle)
        if "model" in (reader.fieldnames or []):
            return False
        rows = list(reader)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows({"model": "eps", **row} for row in rows)
    return True


def read_failures(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path) as handle:
        return list(csv.DictReader(handle))


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


def summary_table(rows: list[dict], steps: tuple | None = (25, 50), samplers: tuple | None = ("euler", "dpmpp_2m")) -> str:
    """The pack's speed control (and its δ/Cmax grid) vs fewer steps vs the best peer, on the
    configurations with these steps and samplers (None: all)."""
    lines = ["| steps | sampler | scheduler | calls | pack: speed | pack: δ/Cmax grid | fewer steps | best peer |",
             "|---|---|---|---|---|---|---|---|"]
    for config in configs(rows):
        if (steps and config[0] not in steps) or (samplers and config[1] not in samplers):
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
        psnr_panel(axes, f"{config[1]}, {config[2]}, {steps} steps ({full:.0f} calls)", "model calls per image",
                   legend_size=6)
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


def at_default_calls(rows: list[dict], setting: str = f"speed 2x {DEFAULT_NOISE_REUSE}") -> str:
    """The default speed's own calls in every configuration: its PSNR, fewer steps and each peer's
    curve there (the best peer named), and the peer setting nearest in calls (measured, not interpolated)."""
    lines = ["| steps | sampler | scheduler | pack 2x: calls | pack 2x: PSNR | fewer steps | best peer at those calls "
             "| peer setting nearest in calls |", "|---|---|---|---|---|---|---|---|"]
    for config in configs(rows):
        mine = [r for r in rows if (int(r["steps"]), r["sampler"], r["scheduler"]) == config and r["setting"] == setting]
        if not mine:
            continue
        calls, curve_of = mine[0]["model_calls"], curves(rows, config)
        peer = best_peer(curve_of, calls)
        near = [r for r in skipping_rows(rows, config) if r["method"] in PEER_METHODS]
        nearest = min(near, key=lambda r: (abs(r["model_calls"] - calls), -score(r))) if near else None
        lines.append(f"| {config[0]} | {config[1]} | {config[2]} | {calls:.1f} / {full_calls(rows, config):.0f} | "
                     f"{mine[0]['psnr']:.1f} dB | {db(interpolate(curve_of.get('fewer', []), calls))} | "
                     + (f"{peer[1]:.1f} dB ({NAMES[peer[0]]})" if peer else "n/a") + " | "
                     + (f"{NAMES[nearest['method']]} {nearest['setting']}: {nearest['model_calls']:.1f} calls, "
                        f"{score(nearest):.1f} dB" if nearest else "none") + " |")
    return "\n".join(lines)


def stochastic_part(rows: list[dict], failures: list[dict], model: str) -> str:
    """Configurations on samplers that add noise every step: which peers ran there, which do not
    run the sampler, which failed, and every method's best score at ≤ the default speed's calls."""
    parts = []
    for config in configs(rows):
        if not stochastic(config[1]):
            continue
        mine = [r for r in rows if (int(r["steps"]), r["sampler"], r["scheduler"]) == config]
        methods = dict.fromkeys(r["method"] for r in mine)
        failed = {f["method"]: f for f in failures if f["model"] == model
                  and (int(f["steps"]), f["sampler"], f["scheduler"]) == config}
        notes = []
        for peer in PEER_METHODS:
            if not runs(peer, config[1]):
                notes.append(f"{NAMES[peer]} does not run {config[1]}")
            elif peer not in methods:
                notes.append(f"{NAMES[peer]}: " + (f"failed ({failed[peer]['error']})" if peer in failed
                                                   else "no rows (not run)"))
        default = next((r for r in mine if r["setting"] == f"speed 2x {DEFAULT_NOISE_REUSE}"), None)
        limit = default["model_calls"] if default and default["model_calls"] < default["full_calls"] else None
        lines = [f"### {config[1]} / {config[2]}, {config[0]} steps", ""]
        if notes:
            lines += ["; ".join(notes) + ".", ""]
        if default and limit is None and sampler_noise(config[1]) is SamplerNoise.BROWNIAN:
            lines += [f"The pack runs {config[1]} unskipped: its noise follows one Brownian path, which plain fewer "
                      "steps keeps too (bench/results/stochastic.md).", ""]
        elif default and limit is None:
            lines += [f"The pack's rows here skipped nothing at 2x ({default['model_calls']:.0f} calls): they were "
                      "written before the pack skipped steps of samplers that add fresh noise, and are kept as they "
                      "were (bench/results/stochastic.md has the current figures).", ""]
        lines += ["| method | settings that saved calls | best PSNR at ≤ the default's calls | its setting (calls) "
                  "| best PSNR of any setting (calls) |", "|---|---|---|---|---|"]
        for method in [m for m in ("fewer", *PEER_METHODS, "adaptive", "speed_linear", "speed_quadratic") if m in methods]:
            saving = [r for r in skipping_rows(rows, config) if r["method"] == method]
            under = [r for r in saving if limit is not None and r["model_calls"] <= limit + 1e-6]
            best_under = max(under, key=score) if under else None
            best = max(saving, key=score) if saving else None
            lines.append(f"| {NAMES.get(method, method)} | {len(saving)} | "
                         + (f"{score(best_under):.1f} dB | {best_under['setting']} ({best_under['model_calls']:.1f})"
                            if best_under else "n/a | ")
                         + " | " + (f"{score(best):.1f} dB ({best['model_calls']:.1f})" if best else "n/a") + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def failure_lines(failures: list[dict], model: str) -> str:
    mine = [f for f in failures if f["model"] == model]
    if not mine:
        return ""
    return ("Peer settings that raised (no row; the error as the peer raised it):\n\n"
            + "".join(f"- {f['steps']} {f['sampler']}/{f['scheduler']}, {NAMES.get(f['method'], f['method'])} "
                      f"{f['setting']}: `{f['error']}`\n" for f in mine) + "\n")


def model_part(rows: list[dict], failures: list[dict], model: str, route: Path) -> str:
    """One model's section: counts, the default at its own calls, stochastic samplers, tables, every row."""
    title = {"eps": "ε-prediction model", "flow": "flow-matching model"}.get(model, model)
    text = f"# {title}: {MODELS.get(model, model)}\n\n"
    if model == "eps" and route.exists():  # written by `bench/peers.py --check-fsampler-route`
        text += ("FSampler's simple node against the route this benchmark drives it by (`--prompts 8 "
                 "--check-fsampler-route`):\n\n" + "".join(f"- {line}\n" for line in route.read_text().splitlines())
                 + "\n")
    text += target_counts(rows) + "\n" + default_vs_fewer(rows) + "\n" + predictor_count(rows) + "\n\n"
    text += failure_lines(failures, model)
    text += ("## The default (speed 2x) at its own calls: fewer steps and the best peer there (PSNR)\n\n"
             + at_default_calls(rows) + "\n\n")
    stochastic = stochastic_part(rows, failures, model)
    if stochastic:
        text += ("## Samplers that add noise every step\n\nPeers that decide per batch ran prompt by prompt and "
                 "are scored against the full-step reference run prompt by prompt too (fresh noise depends on the "
                 "batch). SADA's euler_ancestral and FSampler's ancestral step (its euler with add_noise 1.0) draw "
                 "their noise from torch's global generator, seeded before each run: they cannot follow the "
                 "reference's noise, so their PSNR against their own full steps (the score used) is the fair one.\n\n"
                 + stochastic + "\n\n")
    summary = summary_table(rows) if model == "eps" else summary_table(rows, None, None)
    text += (("## 25 and 50 steps, euler and dpmpp_2m" if model == "eps" else "## Every configuration")
             + ": pack vs fewer steps vs best peer (PSNR dB)\n\n" + summary
             + "\n\n## Every configuration at ~40 / 60 / 80 % of the full step count in calls (PSNR dB)\n\n"
             + budget_table(rows) + "\n\n## Every row\n\n" + every_row(rows) + "\n")
    return text


def plot_name(model: str, steps: int) -> str:
    """The ε model keeps the names the README links to; other models carry theirs."""
    return f"peers_{steps}.png" if model == "eps" else f"peers_{model}_{steps}.png"


def write_report(path: Path, out: Path, cfg: float = 3.0) -> None:
    rows = read_rows(path)
    failures = read_failures(out / FAILURES)
    prompts = sorted({int(r["prompts"]) for r in rows})
    models = [m for m in dict.fromkeys([*MODELS, *(r["model"] for r in rows)]) if any(r["model"] == m for r in rows)]
    header = (f"# Peers benchmark\n\nDigits reference models ({', '.join(models)}; one part each below), cfg {cfg}, "
              f"{'/'.join(map(str, prompts))} prompts "
              f"(noise × class). PSNR/SSIM against each prompt's full-step KSampler result with the same model, sampler "
              f"and scheduler. Model calls: real network forwards per image (counted at the UNet's first conv, "
              f"below every wrapper). Each method's curve is its best PSNR at ≤ c calls over its settings that "
              f"saved calls (a setting that skipped nothing is the reference itself), "
              f"interpolated linearly at the budget (n/a: outside its measured range). FSampler, ZEUS, SADA and "
              f"AccelDiff's AdaptiveDiff run their own copies of the samplers (not ComfyUI's code; FSampler's "
              f"dpmpp_2m differs visibly): "
              f"each is scored by the better of its PSNR against ComfyUI's full-step result and against its own "
              f"full-step output with skipping off ('no skips' rows); both are in the last table. Methods that decide "
              f"per batch (EasyCache, LazyCache, FSampler adaptive, SADA, AccelDiff AdaptiveDiff) ran prompt "
              f"by prompt; the others (and the pack, per_sample on) in one batch. A peer runs only the samplers its "
              f"code offers: FSampler {', '.join(sorted(PEER_SAMPLERS['fsampler']))} (euler_ancestral: its euler "
              f"with add_noise 1.0); ZEUS {', '.join(sorted(PEER_SAMPLERS['zeus']))}; SADA "
              f"{', '.join(sorted(PEER_SAMPLERS['sada']))}; AccelDiff AdaptiveDiff "
              f"{', '.join(sorted(PEER_SAMPLERS['acceldiff_adaptive']))}; EasyCache, LazyCache and Spectrum "
              f"(model patches) every sampler. judian17/ComfyUI-Spectrum is left out: it patches DiT blocks "
              f"(transformer_blocks) only, and the reference models are UNets.\n"
              f"Command: `python3 scripts/dev.py run bench/peers.py --peers /work/peers [--model flow]` (chunks: --steps, "
              f"--samplers, --schedulers); `python3 bench/peers_report.py` rewrites this file from the CSV.\n\n")
    text = header + "\n".join(model_part([r for r in rows if r["model"] == m], failures, m,
                                         out / "peers_fsampler_route.txt") for m in models)
    (out / "peers_summary.md").write_text(text)
    for model in models:
        mine = [r for r in rows if r["model"] == model]
        for steps in sorted({int(r["steps"]) for r in mine}):
            plot_steps(mine, steps, out / plot_name(model, steps))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    write_report(args.out / "peers_results.csv", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
