"""How good can any skip mask be? A search over whole masks against the speed plan and fewer steps.

For a (steps, sampler, scheduler) and a number of model calls, on the reference model, the speed
control's own run (quadratic noise reuse, the correction, the refusals) with a forced mask. Seeds:
the plan for that many skips, strictly alternating skips (both phases), `--start`, random masks.
All are scored, then each, the best first, is improved by moving one skip to another step while a
move gains more than 0.05 dB (until no move helps or the run budget is spent). Every candidate is
a whole sampling run: PSNR of the final image against the same sampler's full-step result, mean
over the prompts; -inf for a mask the run does not follow to the given calls (a refused skip).
The search is blind to the plan's cost model: where its best mask is not far above the plan, no
placement rule would reach much more.

    python3 scripts/dev.py run bench/mask_search.py --steps 25 --sampler uni_pc --scheduler karras --calls 15

Prints a JSON line per seed and a summary line; adds the row to bench/results/mask_search.{csv,md}.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reference.harness import Bench, prompts  # noqa: E402
from bench.common import psnr  # noqa: E402

from adaptive_core.decision import cheapest_skips  # noqa: E402
from adaptive_core.skip_path import SkipPath  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PACK = dict(warmup_steps=4, keep_last_steps=1, max_skip_steps=4, threshold=0.01, noise_reuse="quadratic",
            per_sample=True)  # as bench/peers.py runs the speed control


def mask_text(skips: frozenset[int], steps: int) -> str:
    return SkipPath(tuple(k in skips for k in range(steps))).mask_text()


def longest_run(skips: frozenset[int]) -> int:
    longest = 0
    for start in skips:
        if start - 1 not in skips:
            end = start
            while end + 1 in skips:
                end += 1
            longest = max(longest, end - start + 1)
    return longest


def forced_run(bench: Bench, batch, mask: list[bool], core: dict, pack: dict) -> tuple[list, list[float]]:
    """The speed control's run (its correction, its refusals) with this mask as its plan: the
    model patched with the run's forced_plan, sampled by the core KSampler. (images, calls per prompt)"""
    from devtools.inprocess import loaded_pack_hooks
    hooks = loaded_pack_hooks()
    traces = []
    model = hooks.apply_adaptive_diffusion(bench.model, hooks.AdaptiveConfig(**pack, speed="2x"),
                                           on_trace=traces.append, forced_plan=tuple(mask))
    images = bench.sample(batch, model=model, **core).images
    (trace,) = traces
    calls = [float(sum(s.model_calls for s, computed in zip(trace.steps, row) if computed)) for row in trace.rows]
    return images, calls


def schedule(bench: Bench, args: argparse.Namespace) -> list[float]:
    """The σ schedule this sampler runs (ComfyUI drops the penultimate σ for some samplers)."""
    import comfy.samplers
    drop = args.sampler in comfy.samplers.KSampler.DISCARD_PENULTIMATE_SIGMA_SAMPLERS
    sampling = bench.model.get_model_object("model_sampling")
    sigmas = comfy.samplers.calculate_sigmas(sampling, args.scheduler, args.steps + drop).tolist()
    return sigmas[:-2] + sigmas[-1:] if drop else sigmas


def seed_masks(plan: list[bool], window: range, wanted: int, args: argparse.Namespace) -> dict[str, frozenset[int]]:
    """The masks the search starts from, by name; only those with `wanted` skips."""
    seeds = {"--start": frozenset(k for k, c in enumerate(args.start) if c == "□")} if args.start else {}
    seeds["plan"] = frozenset(k for k, skip in enumerate(plan) if skip)
    for phase in (0, 1):
        seeds[f"alternate from step {window[phase]}"] = frozenset(list(window)[phase::2][:wanted])
    rng = random.Random(0)
    for _ in range(1000 * args.restarts):
        if len(seeds) >= 3 + bool(args.start) + args.restarts:
            break
        candidate = frozenset(rng.sample(list(window), wanted))
        if longest_run(candidate) <= args.max_run:
            seeds[f"random {len(seeds)}"] = candidate
    return {name: seed for name, seed in seeds.items() if len(seed) == wanted}


def improve(best: frozenset[int], best_db: float, score, window: range, max_run: int, budget: int,
            runs: list[int]) -> tuple[frozenset[int], float]:
    """First-improvement local search: move one skip to another step while that gains > 0.05 dB."""
    improved = True
    while improved and runs[0] < budget:
        improved = False
        moves = ((out, into) for out in sorted(best) for into in window if into not in best)
        for out, into in moves:
            candidate = (best - {out}) | {into}
            if longest_run(candidate) > max_run:
                continue
            if runs[0] >= budget:
                break
            db = score(candidate)
            if db > best_db + 0.05:
                best, best_db, improved = candidate, db, True
                break
    return best, best_db


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--sampler", default="uni_pc")
    parser.add_argument("--scheduler", default="karras")
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--max-run", type=int, default=2, help="most skips in a row a candidate may have")
    parser.add_argument("--warmup", type=int, default=PACK["warmup_steps"], help="steps always computed first")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--budget", type=int, default=400, help="most sampling runs (every seed is scored)")
    parser.add_argument("--restarts", type=int, default=0, help="more seeds: random masks (runs within --max-run)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--start", default="", help="one more seed: a mask as Skip Stats prints it (■ computed, □ skipped)")
    args = parser.parse_args(argv)
    bench, batch = Bench(), prompts(args.prompts)
    core = dict(steps=args.steps, cfg=3.0, sampler_name=args.sampler, scheduler=args.scheduler)
    pack = {**PACK, "warmup_steps": args.warmup}
    reference = bench.sample(batch, **core).images
    runs = [0]

    def score(skips: frozenset[int]) -> float:
        runs[0] += 1
        images, calls = forced_run(bench, batch, [k in skips for k in range(args.steps)], core, pack)
        if statistics.mean(calls) != args.calls:  # a refused skip, or 2+ calls a step
            return -math.inf
        return statistics.mean(psnr(a, b) for a, b in zip(images, reference))

    window = range(args.warmup, args.steps - PACK["keep_last_steps"])
    wanted = args.steps - args.calls
    plan = cheapest_skips(wanted, schedule(bench, args), window.start, window.stop, args.max_run)
    seeds = seed_masks(plan, window, wanted, args)
    fewer = bench.sample(batch, **{**core, "steps": args.calls}).images
    fewer_db = statistics.mean(psnr(a, b) for a, b in zip(fewer, reference))
    start = time.perf_counter()
    seed_db = {name: score(seed) for name, seed in seeds.items()}
    found = {name: (seed, seed_db[name]) for name, seed in seeds.items()}
    for name in sorted(seeds, key=seed_db.get, reverse=True):  # the most promising seed first
        if runs[0] >= args.budget:
            break
        found[name] = improve(seeds[name], seed_db[name], score, window, args.max_run, args.budget, runs)
        print(json.dumps({"seed": name, "from": mask_text(seeds[name], args.steps), "psnr": round(seed_db[name], 2),
                          "to": mask_text(found[name][0], args.steps), "improved": round(found[name][1], 2),
                          "runs": runs[0]}, ensure_ascii=False), flush=True)
    best_name = max(found, key=lambda name: found[name][1])
    row = {"steps": args.steps, "sampler": args.sampler, "scheduler": args.scheduler, "calls": args.calls,
           "fewer_steps": round(fewer_db, 2), "plan": round(seed_db.get("plan", math.nan), 2),
           "best": round(found[best_name][1], 2), "best_from": best_name,
           "best_mask": mask_text(found[best_name][0], args.steps), "seeds": len(found), "runs": runs[0]}
    print(json.dumps({**row, "seconds": round(time.perf_counter() - start)}, ensure_ascii=False), flush=True)
    write_results(row, args.out)
    return 0


def write_results(row: dict, out: Path) -> None:
    """Add the row to mask_search.csv (replacing one of the same configuration and calls) and
    rewrite mask_search.md from it."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "mask_search.csv"
    key = [str(row[k]) for k in ("steps", "sampler", "scheduler", "calls")]
    rows = []
    if path.exists():
        with path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if [r[k] for k in ("steps", "sampler", "scheduler", "calls")] != key]
    rows.append({k: str(v) for k, v in row.items()})
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["# How good can any skip mask be? (bench/mask_search.py)", "",
             "Reference model, 4 prompts, cfg 3, the speed control's run (quadratic noise reuse, correction, warm-up 4, "
             "last step kept) with a forced mask. Seeds: the plan for that many skips, strict alternation (both phases), "
             "random masks; each improved by moving one skip at a time while a move gains > 0.05 dB, every candidate "
             "a whole sampling run. PSNR against the same sampler's full-step result. Command per row: "
             "`python3 scripts/dev.py run bench/mask_search.py --steps S --sampler X --scheduler Y --calls C "
             "[--restarts N --budget B --start MASK]`.", "",
             "| steps | sampler | scheduler | calls | fewer steps | the plan | best mask found | best − fewer | mask | seeds | runs |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gain = float(r["best"]) - float(r["fewer_steps"])
        lines.append(f"| {r['steps']} | {r['sampler']} | {r['scheduler']} | {r['calls']} | {float(r['fewer_steps']):.1f} dB | "
                     f"{float(r['plan']):.1f} dB | {float(r['best']):.1f} dB ({r['best_from']}) | {gain:+.1f} dB | "
                     f"`{r['best_mask']}` | {r['seeds']} | {r['runs']} |")
    (out / "mask_search.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
