"""The default speed (2x) on samplers that add noise every step, against plain fewer steps.

Ancestral samplers, er_sde and sa_solver draw fresh noise at every step: a skip extrapolates the
denoised estimate x̂0 and the sampler adds its own noise (the same noise: it depends on the seed
and σ only). The dpmpp SDE samplers draw theirs from one Brownian path over σ, which plain fewer
steps keeps too: the pack runs them unskipped, and the rows marked "measured with skips" show what
skipping gave there (the run's `skip_brownian` input: x̂0 predicted as on the fresh-noise samplers).
PSNR against the same sampler's full-step KSampler result with the same seed, mean over the
prompts; fewer steps interpolated at the pack's calls (bench/all_samplers.py's `study`).

    python3 scripts/dev.py run bench/stochastic.py [--prompts 10] [--out DIR]

Writes bench/results/stochastic.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after ComfyUI: its `nodes` must win

from reference.harness import Bench, prompts  # noqa: E402
import nodes  # noqa: E402,F401  ComfyUI's, imported before bench.all_samplers puts the repository first

import statistics  # noqa: E402

from bench import all_samplers  # noqa: E402
from adaptive_core.samplers import SamplerNoise, sampler_noise  # noqa: E402
from bench.common import RESULTS, interpolate, mean_psnr  # noqa: E402
from devtools.inprocess import loaded_pack_hooks  # noqa: E402

CASES = (("eps", "euler_ancestral", "normal", 30), ("eps", "euler_ancestral", "karras", 25),
         ("eps", "er_sde", "karras", 25), ("eps", "sa_solver", "karras", 25), ("eps", "dpmpp_2s_ancestral", "karras", 25),
         ("eps", "dpmpp_2m_sde", "karras", 30), ("eps", "dpmpp_sde", "karras", 25),
         ("flow", "euler_ancestral", "simple", 30), ("flow", "er_sde", "simple", 25),
         ("flow", "sa_solver", "beta", 25), ("flow", "dpm_2_ancestral", "simple", 25),
         ("flow", "dpmpp_2m_sde", "simple", 30))


def skipped_brownian(bench: Bench, sampler: str, scheduler: str, steps: int, batch) -> dict:
    """all_samplers.study for a Brownian-path sampler with its skips forced on (skip_brownian)."""
    hooks = loaded_pack_hooks()
    core = dict(cfg=3.0, sampler_name=sampler, scheduler=scheduler)
    full = bench.sample(batch, steps=steps, **core)
    traces: list = []
    config = hooks.AdaptiveConfig(**{key: value for key, value in all_samplers.DEFAULTS.items()})
    model = hooks.apply_adaptive_diffusion(bench.model, config, on_trace=traces.append, skip_brownian=True)
    pack = bench.sample(batch, model=model, steps=steps, **core)
    calls = statistics.mean(sum(s.model_calls for s, c in zip(traces[0].steps, row) if c) for row in traces[0].rows)
    fewer = [(r.model_calls[0], mean_psnr(r.images, full.images, ceiling=100.0))
             for r in (bench.sample(batch, steps=m, **core)
                       for m in all_samplers.fewer_steps_around(calls, full.model_calls[0] / steps, steps))]
    return {"sampler": f"{sampler} (measured with skips)", "scheduler": scheduler, "full_calls": full.model_calls[0],
            "calls": calls, "psnr": mean_psnr(pack.images, full.images, ceiling=100.0),
            "fewer": interpolate(fewer, calls), "notes": " / ".join(n.split(";")[0] for n in traces[0].notes)}


def row(result: dict, model: str, steps: int) -> str:
    fewer = result["fewer"]
    margin = "" if fewer is None else f"{result['psnr'] - fewer:+.1f} dB"
    fewer_text = "—" if fewer is None else f"{fewer:.1f} dB"
    psnr = "identical" if result["psnr"] >= 100 else f"{result['psnr']:.1f} dB"
    return (f"| {model} | {result['sampler']} / {result['scheduler']} | {steps} | {result['calls']:.1f} | "
            f"{result['full_calls'] / result['calls']:.2f}x | {psnr} | {fewer_text} | {margin} | "
            f"{result['notes'][:110]} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--only", default="", help="comma-separated sampler names (default: all)")
    parser.add_argument("--models", default="eps,flow", help="reference models: eps, flow")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    wanted = {name for name in args.only.split(",") if name}
    benches: dict[str, Bench] = {}
    lines = ["# The default (2x) on samplers that add noise every step", "",
             f"`python3 scripts/dev.py run bench/stochastic.py --prompts {args.prompts}`; the reference models "
             "(ε: digits UNet; flow: the flow-matching digits model, shift 3), cfg 3, Adaptive KSampler defaults.", "",
             "| model | sampler / scheduler | steps | calls | speed | PSNR | fewer steps at equal calls | margin | "
             "first notes |", "|---|---|---|---|---|---|---|---|---|"]
    for model, sampler, scheduler, steps in CASES:
        if (wanted and sampler not in wanted) or model not in args.models.split(","):
            continue
        bench = benches.setdefault(model, Bench(model=model))
        results = [all_samplers.study(bench, sampler, scheduler, steps, prompts(args.prompts))]
        if sampler_noise(sampler) is SamplerNoise.BROWNIAN:  # the pack runs it unskipped: what skipping gives
            results.append(skipped_brownian(bench, sampler, scheduler, steps, prompts(args.prompts)))
        for result in results:
            lines.append(row(result, model, steps))
            print(lines[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stochastic.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
