"""The default speed (2x) on every sampler in KSampler's list, against plain fewer steps.

For each sampler and scheduler on the reference model: the full-step KSampler result, plain
KSampler with fewer steps (its PSNR interpolated at the default's model calls), and Adaptive
KSampler with every input at its default. PSNR against the same sampler's full-step result, mean
over the prompts. Samplers that add fresh noise every step (ancestral, SDE) follow another noise
path with fewer steps, so the comparison means nothing there: the table says what the default did
(its notes in Skip Stats). Samplers that choose their own steps (dpm_fast, dpm_adaptive) run
unskipped.

    python3 scripts/dev.py run bench/all_samplers.py [--steps 25 --schedulers normal,karras]

Writes bench/results/all_samplers_<steps>.md.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Bench, prompts, psnr  # noqa: E402
from bench.report import interpolate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULTS = dict(threshold=0.01, max_skip_steps=4, warmup_steps=4, keep_last_steps=1, noise_reuse="quadratic",
                per_sample=False, speed="2x")


def study(bench: Bench, sampler: str, scheduler: str, steps: int, batch) -> dict:
    core = dict(cfg=3.0, sampler_name=sampler, scheduler=scheduler)
    full = bench.sample(batch, steps=steps, **core)

    def score(result) -> float:
        return statistics.mean(min(psnr(a, b), 100.0) for a, b in zip(result.images, full.images))
    fewer = []
    for m in range(math.floor(steps * 0.3), steps):
        result = bench.sample(batch, steps=m, **core)
        fewer.append((result.model_calls[0], score(result)))
    pack = bench.sample(batch, "AdaptiveKSampler", steps=steps, **core, **DEFAULTS)
    calls = statistics.mean(pack.model_calls)
    baseline = interpolate(fewer, calls)
    return {"sampler": sampler, "scheduler": scheduler, "full_calls": full.model_calls[0], "calls": calls,
            "psnr": score(pack), "fewer": baseline, "notes": " / ".join(n.split(";")[0] for n in pack.trace.notes)}


def report(rows: list[dict], steps: int, prompts_count: int) -> str:
    compared = [r for r in rows if r["fewer"] is not None and r["calls"] < r["full_calls"]]
    below = [r for r in compared if r["psnr"] < r["fewer"]]
    lines = [f"# The default (speed 2x) on every sampler in KSampler's list, {steps} steps", "",
             f"Reference model, {prompts_count} prompts, cfg 3; every Adaptive KSampler input at its default. "
             "PSNR against the same sampler's full-step KSampler result; fewer steps interpolated at the "
             "default's calls. Command: `python3 scripts/dev.py run bench/all_samplers.py`.", "",
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
    rows = []
    for sampler in samplers:
        for scheduler in args.schedulers.split(","):
            rows.append(study(bench, sampler, scheduler, args.steps, batch))
            r = rows[-1]
            print(f"{sampler:28s} {scheduler:7s} calls {r['calls']:5.1f}/{r['full_calls']:.0f}  PSNR {r['psnr']:6.1f}  "
                  f"fewer {r['fewer'] if r['fewer'] is None else round(r['fewer'], 1)}  {r['notes']}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    text = report(rows, args.steps, args.prompts)
    (args.out / f"all_samplers_{args.steps}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
