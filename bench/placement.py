"""Where should skips go? Single-skip damage per step, and what a placement from it reaches.

For each (steps, sampler, scheduler): the damage of skipping step k alone (MSE of the final image
against the full-step result, mean over the prompts, the pack's own predictor), the speed
control's masks and PSNR, and the PSNR of the cheapest non-adjacent set of as many steps chosen
from the single-skip damages (an oracle that knows every step's cost in advance) — the headroom
a better online placement could still win.

    python3 scripts/dev.py run bench/placement.py --steps 25,50 --samplers euler,dpmpp_2m
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Bench, prompts, psnr  # noqa: E402

PACK = dict(warmup_steps=4, keep_last_steps=1, per_sample=True, max_skip_steps=4, threshold=0.01)


@dataclass(frozen=True)
class Path_:
    skip: tuple[bool, ...]
    source: str = "placement study"

    def check_length(self, steps: int) -> None:
        assert steps == len(self.skip)


def cheapest_spread(damage: dict[int, float], count: int) -> list[int]:
    """`count` steps, no two adjacent, with the least summed damage (dynamic programming)."""
    steps = sorted(damage)
    best = {(-2, 0): (0.0, [])}  # (last chosen, chosen count) -> (cost, chosen)
    for k in steps:
        for (last, n), (cost, chosen) in list(best.items()):
            if k - last >= 2 and n < count:
                key = (k, n + 1)
                candidate = (cost + damage[k], chosen + [k])
                if key not in best or candidate[0] < best[key][0]:
                    best[key] = candidate
    finals = [v for (last, n), v in best.items() if n == count]
    return min(finals)[1] if finals else []


def study(bench: Bench, steps: int, sampler: str, scheduler: str, batch, reuse: str) -> dict:
    core = dict(steps=steps, cfg=3.0, sampler_name=sampler, scheduler=scheduler)
    reference = bench.sample(batch, **core).images
    def run_path(skips) -> float:
        mask = tuple(k in skips for k in range(steps))
        result = bench.sample(batch, "AdaptiveKSampler", **core, **{**PACK, "per_sample": False},
                              noise_reuse=reuse, skip_path=Path_(mask))
        return statistics.mean(psnr(a, b) for a, b in zip(result.images, reference))
    window = range(PACK["warmup_steps"], steps - PACK["keep_last_steps"])
    damage = {k: 10 ** (-run_path({k}) / 10) for k in window}
    out = {"config": f"{steps} {sampler} {scheduler}", "damage_db": {k: round(-10 * __import__('math').log10(v), 1) for k, v in damage.items()}}
    for speed in ("1.5x", "2x"):
        result = bench.sample(batch, "AdaptiveKSampler", **core, **PACK, noise_reuse=reuse, speed=speed)
        p = statistics.mean(psnr(a, b) for a, b in zip(result.images, reference))
        skipped = statistics.mean(m.count("□") for m in result.masks)
        oracle = cheapest_spread(damage, round(skipped))
        out[speed] = {"psnr": round(p, 1), "skipped": skipped, "masks": result.masks[:2],
                      "oracle_psnr": round(run_path(set(oracle)), 1), "oracle_steps": oracle}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", default="25,50")
    parser.add_argument("--samplers", default="euler,dpmpp_2m")
    parser.add_argument("--schedulers", default="normal,karras")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--reuse", default="quadratic")
    args = parser.parse_args(argv)
    bench = Bench()
    batch = prompts(args.prompts)
    for steps in map(int, args.steps.split(",")):
        for sampler in args.samplers.split(","):
            for scheduler in args.schedulers.split(","):
                print(json.dumps(study(bench, steps, sampler, scheduler, batch, args.reuse)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def full_run_signals(bench: Bench, steps: int, sampler: str, scheduler: str, batch) -> list[dict]:
    """Per step of a full run: σ, and what an online rule could know about skipping it (computed
    points k-1, k-2, k-3): the relative quadratic-linear gap, the true relative errors of both
    predictions, and |Δσ|."""
    import torch
    calls = []
    def capture(apply_model, args):
        out = apply_model(args["input"], args["timestep"], **args["c"])
        sigma = args["timestep"].reshape(-1, *[1] * (out.dim() - 1)).float()
        calls.append((float(args["timestep"].reshape(-1)[0]), ((args["input"] - out) / sigma).float()))
        return out
    model = bench.model.clone()
    model.set_model_unet_function_wrapper(capture)
    bench.sample(batch, model=model, steps=steps, cfg=3.0, sampler_name=sampler, scheduler=scheduler)
    sigmas = []
    points = []
    for s, e in calls:  # first call of each step (multi-evaluation samplers: the step's start)
        if not sigmas or s < sigmas[-1] - 1e-9:
            sigmas.append(s)
            points.append(e)
    rows = []
    norm = lambda t: float(t.norm())
    for k in range(3, len(points)):
        (sm, em), (s0, e0), (s1, e1) = (sigmas[k - 3], points[k - 3]), (sigmas[k - 2], points[k - 2]), (sigmas[k - 1], points[k - 1])
        s = sigmas[k]
        slope1 = (e1 - e0) / (s1 - s0)
        linear = e1 + slope1 * (s - s1)
        quad = linear + (slope1 - (e0 - em) / (s0 - sm)) / (s1 - sm) * (s - s1) * (s - s0)
        nxt = sigmas[k + 1] if k + 1 < len(sigmas) else 0.0
        rows.append(dict(k=k, sigma=s, dsigma=s - nxt, gap=norm(quad - linear) / norm(e1),
                         err_lin=norm(linear - points[k]) / norm(points[k]),
                         err_quad=norm(quad - points[k]) / norm(points[k]), eps=norm(points[k])))
    return rows
