"""Where should skips go? What skipping one step costs, and which signal predicts it.

For each (steps, sampler, scheduler) on the reference model: the damage of skipping step k alone
(the final image's MSE against the full-step result, mean over the prompts, the pack's quadratic
predictor), and how well three signals rank the steps by that damage (Spearman): the speed plan's
`skip_cost` (from the σ schedule only), the paper's third-order criterion and the embedded error
estimate (quadratic − linear prediction gap), both from a full run. Then the speed control's own
PSNR next to the cheapest mask with as many skips built from the measured single-skip damages
(an oracle that knows every step's cost in advance: the headroom left to placement).

    python3 scripts/dev.py run bench/studies/placement.py [--steps 25,50 --samplers euler,dpmpp_2m,uni_pc]

Writes bench/results/placement.md (and .json with the per-step damages).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root; the rest: bench/common.py

from reference.harness import Bench, prompts  # noqa: E402
from bench.common import RESULTS, mean_psnr  # noqa: E402

import torch  # noqa: E402

from adaptive_core.decision import plan_skips, skip_cost  # noqa: E402
from adaptive_core.skip_path import SkipPath  # noqa: E402

PACK = dict(warmup_steps=4, keep_last_steps=1, max_skip_steps=4, threshold=0.01, noise_reuse="quadratic")
SPEEDS = ("1.5x", "2x")


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(values):
        order = sorted(range(len(values)), key=values.__getitem__)
        out = [0.0] * len(values)
        for position, index in enumerate(order):
            out[index] = float(position)
        return out
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.mean(ra), statistics.mean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))


def full_run(bench: Bench, core: dict, batch) -> tuple[list[float], list[torch.Tensor], list[torch.Tensor]]:
    """σ, input latent and implied noise of the first model call of every step of a full run."""
    calls: list[tuple[float, torch.Tensor, torch.Tensor]] = []

    def capture(apply_model, args):
        out = apply_model(args["input"], args["timestep"], **args["c"])
        sigma = float(args["timestep"].reshape(-1)[0])
        calls.append((sigma, args["input"].float().clone(), ((args["input"] - out) / sigma).float()))
        return out
    model = bench.model.clone()
    model.set_model_unet_function_wrapper(capture)
    bench.sample(batch, model=model, **core)
    steps = []
    for call in calls:  # multi-evaluation samplers: the first call of each step
        if not steps or call[0] < steps[-1][0] - 1e-9:
            steps.append(call)
    return [s for s, _, _ in steps], [x for _, x, _ in steps], [e for _, _, e in steps]


def signals(sigmas: list[float], xs: list[torch.Tensor], eps: list[torch.Tensor], k: int) -> dict[str, float]:
    d = [float((xs[j] - xs[j - 1]).abs().mean()) for j in (k - 2, k - 1, k)]
    criterion = abs(d[2] - 2 * d[1] + d[0]) / (2 * d[1])
    (sm, em), (s0, e0), (s1, e1) = [(sigmas[j], eps[j]) for j in (k - 3, k - 2, k - 1)]
    slope1, slope0 = (e1 - e0) / (s1 - s0), (e0 - em) / (s0 - sm)
    gap = (slope1 - slope0) / (s1 - sm) * (sigmas[k] - s1) * (sigmas[k] - s0)
    return {"criterion": criterion, "error estimate": float(gap.norm() / e1.norm())}


def study(bench: Bench, steps: int, sampler: str, scheduler: str, batch) -> dict:
    core = dict(steps=steps, cfg=3.0, sampler_name=sampler, scheduler=scheduler)
    reference = bench.sample(batch, **core).images

    def path_psnr(skips: set[int]) -> float:
        mask = SkipPath(tuple(k in skips for k in range(steps)), "placement study")
        result = bench.sample(batch, "AdaptiveKSampler", **core, **PACK, per_sample=False, skip_path=mask)
        return mean_psnr(result.images, reference)
    sigmas, xs, eps = full_run(bench, core, batch)
    sigmas = sigmas + [0.0]
    window = list(range(PACK["warmup_steps"], steps - PACK["keep_last_steps"]))  # where a speed may skip
    damage = {k: 10 ** (-path_psnr({k}) / 10) for k in window}
    predictors = {"skip_cost (schedule)": [skip_cost(sigmas, k) for k in window]}
    measured = [signals(sigmas, xs, eps, k) for k in window]
    for name in ("criterion", "error estimate"):
        predictors[name] = [m[name] for m in measured]
    out = {"config": f"{steps} {sampler} {scheduler}",
           "damage_db": {k: round(-10 * math.log10(v), 1) for k, v in damage.items()},
           "spearman": {name: round(spearman(v, [damage[k] for k in window]), 2) for name, v in predictors.items()},
           "max_error_estimate": round(max(predictors["error estimate"]), 4)}  # against the tolerance
    for speed in SPEEDS:
        result = bench.sample(batch, "AdaptiveKSampler", **core, **PACK, per_sample=True, speed=speed)
        skipped = round(statistics.mean(m.count("□") for m in result.masks))
        oracle = plan_skips([damage[k] for k in window], skipped, 2)
        out[speed] = {"calls": statistics.mean(result.model_calls),
                      "psnr": round(mean_psnr(result.images, reference), 1),
                      "oracle_psnr": round(path_psnr({k for k, s in zip(window, oracle) if s}), 1)}
    return out


def report(rows: list[dict], prompts_count: int) -> str:
    names = list(rows[0]["spearman"])
    lines = ["# Where skips cost the image: single-skip damage and what predicts it", "",
             f"Reference model, {prompts_count} prompts, cfg 3, quadratic noise reuse, warm-up 4, last step kept. "
             "Spearman rank correlation between the damage of skipping each step alone and each signal "
             "(1 = ranks the steps exactly by their damage), and the largest error estimate among the steps a speed may skip (the default tolerance refuses above 0.1). Then the speed control against an oracle mask with "
             "as many skips chosen from the measured damages (runs of at most 2). "
             "Command: `python3 scripts/dev.py run bench/studies/placement.py`.", "",
             "| config | " + " | ".join(names) + " | largest error estimate | "
             + " | ".join(f"speed {s}: PSNR (oracle)" for s in SPEEDS) + " |",
             "|---" * (2 + len(names) + len(SPEEDS)) + "|"]
    for row in rows:
        cells = [f"{row['spearman'][n]:+.2f}" for n in names] + [f"{row['max_error_estimate']:.3f}"]
        cells += [f"{row[s]['psnr']:.1f} dB ({row[s]['oracle_psnr']:.1f}) @ {row[s]['calls']:.1f} calls" for s in SPEEDS]
        lines.append(f"| {row['config']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="25,50")
    parser.add_argument("--samplers", default="euler,dpmpp_2m,uni_pc")
    parser.add_argument("--schedulers", default="normal,karras")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    bench = Bench()
    batch = prompts(args.prompts)
    rows = []
    for steps in map(int, args.steps.split(",")):
        for sampler in args.samplers.split(","):
            for scheduler in args.schedulers.split(","):
                rows.append(study(bench, steps, sampler, scheduler, batch))
                print(json.dumps({k: v for k, v in rows[-1].items() if k != "damage_db"}), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "placement.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / "placement.md").write_text(report(rows, args.prompts))
    print(report(rows, args.prompts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
