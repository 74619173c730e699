"""The default speed (2x) on every sampler in KSampler's list, against plain fewer steps.

For each sampler and scheduler on the reference model: the full-step KSampler result, plain
KSampler with fewer steps (its PSNR interpolated at the default's model calls), and Adaptive
KSampler with every input at its default. PSNR against the same sampler's full-step result, mean
over the prompts. Samplers that add fresh noise every step (ancestral, SDE) follow another noise
path with fewer steps, so the comparison means nothing there: the table says what the default did
(its notes in Skip Stats). Samplers that choose their own steps (dpm_fast, dpm_adaptive) run
unskipped.

    python3 scripts/dev.py run bench/all_samplers.py [--steps 25 --schedulers normal,karras --samplers a,b]

Keeps its rows in bench/results/all_samplers_<steps>.csv, each with the commit it was run at; a
run replaces the rows of the pairs it ran (all of them by default) and keeps the others, then
writes bench/results/all_samplers_<steps>.md from the whole file.
"""
from __future__ import annotations

import argparse
import csv
import math
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root; the rest: bench/common.py

from reference.harness import Bench, prompts  # noqa: E402
from bench.common import REPO, RESULTS, interpolate, mean_psnr  # noqa: E402

DEFAULTS = dict(threshold=0.01, max_skip_steps=4, warmup_steps=4, keep_last_steps=1, noise_reuse="quadratic",
                per_sample=False, speed="2x")


def fewer_steps_around(calls: float, calls_per_step: float, steps: int) -> range:
    """The step counts whose calls bracket `calls` (a step's calls vary by one for heun-like
    samplers, whose last step makes one call): all the interpolation reads."""
    centre = calls / calls_per_step
    return range(max(1, math.floor(centre) - 2), min(steps, math.ceil(centre) + 3))


def study(bench: Bench, sampler: str, scheduler: str, steps: int, batch) -> dict:
    core = dict(cfg=3.0, sampler_name=sampler, scheduler=scheduler)
    full = bench.sample(batch, steps=steps, **core)

    def score(result) -> float:
        return mean_psnr(result.images, full.images, ceiling=100.0)
    pack = bench.sample(batch, "AdaptiveKSampler", steps=steps, **core, **DEFAULTS)
    calls = statistics.mean(pack.model_calls)
    fewer = []
    for m in fewer_steps_around(calls, full.model_calls[0] / steps, steps):
        result = bench.sample(batch, steps=m, **core)
        fewer.append((result.model_calls[0], score(result)))
    baseline = interpolate(fewer, calls)
    return {"sampler": sampler, "scheduler": scheduler, "full_calls": full.model_calls[0], "calls": calls,
            "psnr": score(pack), "fewer": baseline, "notes": " / ".join(n.split(";")[0] for n in pack.trace.notes)}


FIELDS = ("sampler", "scheduler", "full_calls", "calls", "psnr", "fewer", "notes", "commit")


def code_version() -> str:
    """The commit the pack's code is at, "+changes" when the work tree differs from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "adaptive_core", "nodes"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    return (head or "unknown") + ("+changes" if dirty else "")


def load_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = list(csv.DictReader(path.open()))
    for r in rows:
        for key in ("full_calls", "calls", "psnr"):
            r[key] = float(r[key])
        r["fewer"] = None if r["fewer"] == "" else float(r["fewer"])
    return rows


def save_rows(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows({**r, "fewer": "" if r["fewer"] is None else r["fewer"]} for r in rows)


def merged(kept: list[dict], new: list[dict], order: list[str]) -> list[dict]:
    """kept with new's pairs replaced, in KSampler's order of samplers (normal before karras)."""
    by_pair = {(r["sampler"], r["scheduler"]): r for r in kept}
    by_pair.update({(r["sampler"], r["scheduler"]): r for r in new})
    rank = {name: i for i, name in enumerate(order)}
    first = {"normal": 0, "karras": 1}
    return sorted(by_pair.values(), key=lambda r: (rank.get(r["sampler"], len(rank)),
                                                   first.get(r["scheduler"], 2), r["scheduler"]))


def report(rows: list[dict], steps: int, prompts_count: int) -> str:
    compared = [r for r in rows if r["fewer"] is not None and r["calls"] < r["full_calls"]]
    below = [r for r in compared if r["psnr"] < r["fewer"]]
    lines = [f"# The default (speed 2x) on every sampler in KSampler's list, {steps} steps", "",
             f"Reference model, {prompts_count} prompts, cfg 3; every Adaptive KSampler input at its default. "
             "PSNR against the same sampler's full-step KSampler result; fewer steps interpolated at the "
             "default's calls. Command: `python3 scripts/dev.py run bench/all_samplers.py`. Rows from "
             f"all_samplers_{steps}.csv, run at: " + ", ".join(
                 f"{commit} ({count} rows)" for commit, count in Counter(r["commit"] for r in rows).most_common())
             + " (a run with --samplers replaces only those rows).", "",
             f"Below fewer steps in {len(below)} of {len(compared)} sampler/scheduler pairs that saved calls"
             + (": " + ", ".join(f"{r['sampler']}/{r['scheduler']} {r['psnr'] - r['fewer']:+.1f} dB" for r in below)
                if below else "") + ".", "",
             "| sampler | scheduler | calls (full) | default 2x | fewer steps | difference | notes |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        fewer = "n/a" if r["fewer"] is None else f"{r['fewer']:.1f} dB"
        diff = "n/a" if r["fewer"] is None or r["calls"] >= r["full_calls"] else f"{r['psnr'] - r['fewer']:+.1f} dB"
        lines.append(f"| {r['sampler']} | {r['scheduler']} | {r['calls']:.1f} ({r['full_calls']:.0f}) | "
                     f"{r['psnr']:.1f} dB | {fewer} | {diff} | {r['notes']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--schedulers", default="normal,karras")
    parser.add_argument("--samplers", default=None, help="comma list (default: KSampler's whole list)")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import comfy.samplers
    bench, batch = Bench(), prompts(args.prompts)
    samplers = args.samplers.split(",") if args.samplers else list(comfy.samplers.KSampler.SAMPLERS)
    table = args.out / f"all_samplers_{args.steps}.csv"
    version, rows = code_version(), []
    for sampler in samplers:
        for scheduler in args.schedulers.split(","):
            rows.append({**study(bench, sampler, scheduler, args.steps, batch), "commit": version})
            r = rows[-1]
            print(f"{sampler:28s} {scheduler:7s} calls {r['calls']:5.1f}/{r['full_calls']:.0f}  PSNR {r['psnr']:6.1f}  "
                  f"fewer {r['fewer'] if r['fewer'] is None else round(r['fewer'], 1)}  {r['notes']}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = merged(load_rows(table), rows, list(comfy.samplers.KSampler.SAMPLERS))
    save_rows(table, rows)
    text = report(rows, args.steps, args.prompts)
    (args.out / f"all_samplers_{args.steps}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
