"""Peers benchmark: AdaptiveDiffusion against fewer steps, core EasyCache/LazyCache, FSampler,
ZEUS, SADA and AdaptiveDiff (AccelDiff) and Spectrum, side by side in one in-process ComfyUI.

    python3 scripts/dev.py run bench/peers.py --peers /work/peers [--model eps|flow] [--steps 20,25]
        [--samplers euler] [--schedulers normal] [--prompts 4] [--report-only]

The peers are custom node packs read from their public repositories into a folder outside this
repo (`--peers`, one sub-folder per repository, as `git clone` names it); a missing folder is
reported and its rows are left out. On a trained digits reference model (`--model`: eps, the
ε-prediction UNet, or flow, the flow-matching model with velocity prediction and shift 3), for every
(steps, sampler, scheduler): the full-step KSampler result of each prompt is the reference; every method
and setting is scored by real network calls (counted at the UNet's first conv, below every
wrapper), PSNR and SSIM against it. One CSV row per (model, steps, sampler, scheduler, method,
setting, prompts) in bench/results/peers_results.csv; rows already there are skipped, so the grid runs in
chunks (a file from before the model column gets it, value eps, on the first run). A peer runs only the
samplers its code offers (bench/peers_report.py PEER_SAMPLERS); a peer setting that raises is printed and
kept in bench/results/peers_failures.csv for the report. On samplers that add noise every step
(euler_ancestral), the methods that run prompt by prompt are scored against the full steps run prompt by
prompt (the step noise depends on the batch), and torch's global generator is seeded before every run
(SADA's and FSampler's ancestral noise come from it).
Tables and plots: bench/peers_report.py (rewritten at the end of every run).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root; the rest: bench/common.py

from reference.harness import SEED, Bench, BatchResult, Prompt, prompts  # noqa: E402
from bench.common import RESULTS, mean_psnr, mean_ssim, psnr  # noqa: E402
from bench.peers_report import (CSV_FIELDS, FAILURE_FIELDS, FAILURES, migrate, runs, stochastic,  # noqa: E402
                                write_report)

import torch  # noqa: E402  (after the harness has put ComfyUI in place)

# ---- The pack's settings: AdaptiveKSampler inputs, one row each. "adaptive": the δ/Cmax grid (what
# ---- the settings can reach); "speed_<predictor>": the one user control, `speed`, per predictor.
PACK_FIXED = dict(warmup_steps=4, keep_last_steps=1, per_sample=True)
SPEEDS = ("1.25x", "1.5x", "1.75x", "2x", "2.5x", "3x")
SPEED_SETTINGS: list[tuple[str, str, dict]] = [
    (f"speed_{mode}", f"speed {speed} {mode}", dict(speed=speed, noise_reuse=mode, max_skip_steps=4, threshold=0.01))
    for mode in ("linear", "quadratic") for speed in SPEEDS
]
PACK_SETTINGS: list[tuple[str, dict]] = [
    (f"{mode} Cmax {cmax} δ={delta}", dict(noise_reuse=mode, max_skip_steps=cmax, threshold=delta))
    for mode in ("linear", "quadratic") for cmax in (1, 2, 3) for delta in (0.005, 0.01, 0.02, 0.03, 0.3)
]

FEWER_FRACTIONS = (0.4, 0.5, 0.6, 0.7, 0.8)   # plain KSampler at these fractions of the steps
CACHE_THRESHOLDS = (0.05, 0.2)                 # core EasyCache / LazyCache reuse_threshold
# FSampler's simple node, as its code fixes it (nodes.py FSampler.sample), driven through its
# FSamplerSelect node and core SamplerCustom: the simple node draws its noise itself and cannot
# take a prompt's noise row, SamplerCustom gives it exactly the reference's noise.
FSAMPLER_SIMPLE = dict(adaptive_mode="learning", smoothing_beta=0.9999, protect_first_steps=2,
                       protect_last_steps=3, anchor_interval=4, max_consecutive_skips=4, add_noise=0.0,
                       noise_type="gaussian", verbose=False, no_grad=True, official_comfy=True,
                       sigma_aware=True, extrapolate_denoised=True, skip_indices="", denoise=1.0)
FSAMPLER_MODES = ("h2/s2", "h2/s3", "h3/s3", "adaptive", "h2/s5")  # h2/s5: its curve's high-budget end
# Our sampler -> (FSampler's sampler, its add_noise): FSampler has no euler_ancestral by name; its
# ancestral step is its euler with add_noise (eta) 1.0. Which samplers each peer runs: PEER_SAMPLERS.
FSAMPLER_AS = {"euler_ancestral": ("euler", 1.0)}
SPECTRUM_SETTINGS = [("defaults (window 3, flex 0.75)", dict(window_size=3, flex_window=0.75)),
                     ("window 2, flex 0", dict(window_size=2, flex_window=0.0))]


# AccelDiff runs its own copies of the k-diffusion samplers: each of ZEUS and SADA is also scored
# against its own output with skipping switched off (acceleration window after the last step).
NO_SKIPS = "no skips (its own full steps)"
# AccelDiff's AdaptiveDiff (its own AdaptiveDiffusion; sampler/adaptivediff.py): a skipped step reuses
# the last x̂0; threshold 0 never skips (its "no skips" row).
ACCELDIFF_ADAPTIVE = [(NO_SKIPS, dict(threshold=0.0, max_skip_steps=4))] + [
    (f"max_skip 4 threshold {t}" + (" (defaults)" if t == 0.01 else ""), dict(threshold=t, max_skip_steps=4))
    for t in (0.005, 0.01, 0.02, 0.05, 0.1)]


def zeus_settings(steps: int) -> list[tuple[str, dict]]:
    """ZEUS: its defaults (tuned for 50 steps: accelerate steps 10-44), and the same pattern and a
    sparser one over the steps' own 20 %-to-last-2 span."""
    start = max(3, round(0.2 * steps))
    return [(NO_SKIPS, dict(zeus_acc_start=100, zeus_acc_end=0)),
            ("defaults (d3 m0,1, steps 10..44)", {}),
            (f"d3 m0,1 steps {start}..{steps - 3}", dict(zeus_acc_start=start, zeus_acc_end=-2)),
            (f"d2 m1 steps {start}..{steps - 3}", dict(zeus_denominator=2, zeus_modular="1",
                                                        zeus_acc_start=start, zeus_acc_end=-2)),
            (f"d4 m1 steps {start}..{steps - 3}", dict(zeus_denominator=4, zeus_modular="1",
                                                        zeus_acc_start=start, zeus_acc_end=-2))]


def sada_settings(steps: int) -> list[tuple[str, dict]]:
    start = max(3, round(0.2 * steps))
    return [(NO_SKIPS, dict(acc_start=100, acc_end=0)),
            ("defaults (steps 10..46, max_interval 4)", {}),
            (f"steps {start}..{steps - 3}, max_interval 2", dict(acc_start=start, acc_end=steps - 2,
                                                                 max_interval=2))]


PEERS = {  # folder under --peers: (repository, the node types the benchmark uses)
    "ComfyUI-FSampler": ("obisin/ComfyUI-FSampler", ("FSamplerSelect",)),
    "ComfyUI-AccelDiff": ("jiajianxie/ComfyUI-AccelDiff", ("AccelDiffUnified",)),
    "ComfyUI-Spectrum-sdxl": ("ruwwww/ComfyUI-Spectrum-sdxl", ("SpectrumSDXL",)),
}


@dataclass
class Setting:
    method: str          # full | fewer | easycache | lazycache | fsampler | zeus | sada | acceldiff_adaptive | spectrum | adaptive | speed_*
    label: str
    run: Callable[..., BatchResult] = field(repr=False)  # run(batch) -> BatchResult
    impl: str = "comfy"  # whose sampler code: comfy, or the peer's own (fsampler, acceldiff-zeus/-sada/-adaptive)
    per_batch: bool = False  # decides per batch: run prompt by prompt


def load_peers(bench: Bench, peers_dir: Path | None) -> set[str]:
    """Load every peer folder found as a custom node pack; print why any is missing."""
    import nodes
    loaded = set()
    for folder, (repo, node_types) in PEERS.items():
        path = peers_dir / folder if peers_dir else None
        if path is None or not path.is_dir():
            print(f"peer folder missing: {path or folder} ({repo}); its rows are left out. Fetch "
                  f"github:{repo} and check it out there.", flush=True)
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            ok = asyncio.run(nodes.load_custom_node(str(path)))
        missing = [t for t in node_types if t not in bench.nodes]
        if not ok or missing:
            print(f"peer {folder} failed to load from {path} (missing nodes: {missing}); its rows "
                  f"are left out.", flush=True)
            continue
        loaded.add(folder)
    return loaded


def quiet(run: Callable[..., BatchResult]) -> Callable[..., BatchResult]:
    """Peers print per step (Spectrum: every call); keep the log readable."""
    def wrapped(*args, **kwargs):
        with contextlib.redirect_stdout(io.StringIO()):
            return run(*args, **kwargs)
    return wrapped


def settings_for(bench: Bench, steps: int, sampler: str, scheduler: str, cfg: float,
                 loaded: set[str]) -> list[Setting]:
    core = dict(sampler_name=sampler, scheduler=scheduler, cfg=cfg)
    grid = [Setting("full", f"{steps} steps (reference)", lambda b: bench.sample(b, steps=steps, **core))]
    for n in sorted({round(f * steps) for f in FEWER_FRACTIONS}):
        grid.append(Setting("fewer", f"{n} steps", lambda b, n=n: bench.sample(b, steps=n, **core)))
    for node, method in (("EasyCache", "easycache"), ("LazyCache", "lazycache")):
        for threshold in CACHE_THRESHOLDS:
            grid.append(Setting(method, f"{node} {threshold}", lambda b, node=node, t=threshold: bench.sample(
                b, model=bench.with_cache_node(node, t), steps=steps, **core), per_batch=True))
    sigmas = lambda: bench.call("BasicScheduler", model=bench.model, scheduler=scheduler, steps=steps,
                                denoise=1.0)[0]  # noqa: E731
    if "ComfyUI-FSampler" in loaded and runs("fsampler", sampler):
        (its_sampler, add_noise) = FSAMPLER_AS.get(sampler, (sampler, 0.0))
        for mode in ("none", *FSAMPLER_MODES):
            def run(b, mode=mode):
                (fsampler, _) = bench.call("FSamplerSelect", model=bench.model, steps=steps, scheduler=scheduler,
                                           sampler=its_sampler, skip_mode=mode,
                                           **{**FSAMPLER_SIMPLE, "add_noise": add_noise})
                return bench.sample_custom(b, fsampler, sigmas(), cfg=cfg)
            label = NO_SKIPS if mode == "none" else mode
            grid.append(Setting("fsampler", label, quiet(run), "fsampler", per_batch=mode == "adaptive"))
    if "ComfyUI-AccelDiff" in loaded:
        for method, name, table in (("zeus", "ZEUS", zeus_settings(steps)), ("sada", "SADA", sada_settings(steps)),
                                    ("acceldiff_adaptive", "AdaptiveDiff", ACCELDIFF_ADAPTIVE)):
            if not runs(method, sampler):
                continue
            for label, inputs in table:
                def run(b, name=name, inputs=inputs):
                    (accel, _) = bench.call("AccelDiffUnified", sampler_method=name, model_method="None",
                                            sampler_name=sampler, **inputs)
                    return bench.sample_custom(b, accel, sigmas(), cfg=cfg)
                grid.append(Setting(method, label, quiet(run), f"acceldiff-{method.removeprefix('acceldiff_')}",
                                    per_batch=method in ("sada", "acceldiff_adaptive")))
    if "ComfyUI-Spectrum-sdxl" in loaded:
        for label, inputs in SPECTRUM_SETTINGS:
            def run(b, inputs=inputs):
                (model,) = bench.call("SpectrumSDXL", model=bench.model, w=0.6, m=4, lam=0.1, warmup_steps=5,
                                      stop_caching_step=-1, **inputs)
                return bench.sample(b, model=model, steps=steps, **core)
            grid.append(Setting("spectrum", label, quiet(run)))
    pack = [("adaptive", label, inputs) for label, inputs in PACK_SETTINGS] + SPEED_SETTINGS
    for method, label, inputs in pack:
        grid.append(Setting(method, label, lambda b, inputs=inputs: bench.sample(
            b, "AdaptiveKSampler", steps=steps, **core, **PACK_FIXED, **inputs)))
    return grid


def check_fsampler_route(bench: Bench, batch: list[Prompt], steps: int = 25, cfg: float = 3.0) -> str:
    """FSampler's simple node against the route this benchmark drives it by (FSamplerSelect with the
    simple node's fixed settings + SamplerCustom), on prompts whose noise rows are 0..N-1 (where the
    simple node's own noise draw gives the same noise)."""
    assert [p.noise_index for p in batch] == list(range(len(batch)))
    lines = []
    for mode in ("h2/s2", "adaptive"):
        sample = lambda **inputs: bench.call("FSampler", steps=steps, cfg=cfg, scheduler="normal", sampler="euler",
                                             skip_mode=mode, add_noise=0.0, denoise=1.0, verbose=False,
                                             **{k: v for k, v in inputs.items() if k != "denoise"})  # noqa: E731
        simple = quiet(bench.sample_with)(batch, sample)
        (fsampler, sigmas) = bench.call("FSamplerSelect", model=bench.model, steps=steps, scheduler="normal",
                                        sampler="euler", skip_mode=mode, **FSAMPLER_SIMPLE)
        route = quiet(bench.sample_custom)(batch, fsampler, sigmas, cfg=cfg)
        worst = min(psnr(a, b) for a, b in zip(simple.images, route.images))
        lines.append(f"FSampler {mode}, euler, {steps} steps, batch of {len(batch)}: simple node "
                     f"{statistics.mean(simple.model_calls):.0f} calls, this route "
                     f"{statistics.mean(route.model_calls):.0f} calls, lowest PSNR between them {worst:.1f} dB")
    return "\n".join(lines)


def scores(result: BatchResult, references: torch.Tensor) -> tuple[float, float]:
    return mean_psnr(result.images, references), mean_ssim(result.images, references)


def run_setting(bench: Bench, setting: Setting, batch: list[Prompt], per_batch: bool | None = None) -> BatchResult:
    """One setting on the batch (prompt by prompt if it decides per batch, or `per_batch`); torch's
    global generator seeded before each run (peers that draw their step noise from it)."""
    def run(prompts: list[Prompt]) -> BatchResult:
        torch.manual_seed(SEED)
        return setting.run(prompts)
    if setting.per_batch if per_batch is None else per_batch:
        results = [run([prompt]) for prompt in batch]
        return BatchResult(torch.cat([r.images for r in results]), [r.model_calls[0] for r in results],
                           sum(r.seconds for r in results) / len(results), [r.masks[0] for r in results])
    return run(batch)


def done_keys(path: Path) -> set[tuple]:
    if not path.exists():
        return set()
    with open(path) as handle:
        return {key_of(row) for row in csv.DictReader(handle)}


def key_of(row: dict) -> tuple:
    """A row's identity; a row without a model (written before the column) is an ε row."""
    return (row.get("model") or "eps", int(row["steps"]), row["sampler"], row["scheduler"], row["method"],
            row["setting"], int(row["prompts"]))


def append_row(path: Path, row: dict, fields: list[str] = CSV_FIELDS) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow(row)


def run_config(bench: Bench, steps: int, sampler: str, scheduler: str, cfg: float, batch: list[Prompt],
               loaded: set[str], path: Path, methods: set[str] | None = None,
               pack_labels: set[str] | None = None, model: str = "eps") -> int:
    """Every pending setting of one (steps, sampler, scheduler) on `model` (the Bench's); returns the
    rows written."""
    base = dict(model=model, steps=steps, sampler=sampler, scheduler=scheduler, prompts=len(batch))
    done = done_keys(path)
    grid = [s for s in settings_for(bench, steps, sampler, scheduler, cfg, loaded)
            if (methods is None or s.method == "full" or s.method in methods)
            and (pack_labels is None or not s.method.startswith(("adaptive", "speed")) or s.label in pack_labels)]
    pending = [s for s in grid if key_of({**base, "method": s.method, "setting": s.label}) not in done]
    if not pending:
        return 0
    started = time.perf_counter()
    reference = run_setting(bench, grid[0], batch)
    full_calls = statistics.mean(reference.model_calls)
    # Fresh step noise depends on the batch: a method run prompt by prompt is scored against full steps
    # run prompt by prompt. ODE samplers: one reference (the noise is the prompt's initial row only).
    split = stochastic(sampler)
    own_references: dict[tuple, torch.Tensor] = {("comfy", False): reference.images}

    def reference_of(impl: str, per_batch: bool, result: BatchResult | None, label: str) -> torch.Tensor:
        key = (impl, per_batch and split)
        if key not in own_references:  # the full-step run of that code (a peer's: its first row, no skips)
            own_references[key] = result.images if result is not None and label == NO_SKIPS else run_setting(
                bench, next(s for s in grid if s.impl == impl), batch, per_batch=key[1]).images
        return own_references[key]

    for setting in pending:
        try:
            result = run_setting(bench, setting, batch)
        except Exception as error:  # a peer that breaks on this model or sampler: say so, keep the grid going
            text = f"{type(error).__name__}: {error}".splitlines()[0][:300]
            print(f"{model} {steps:3d} {sampler:9s} {scheduler:7s} {setting.method:9s} {setting.label:34s} FAILED: "
                  f"{text}", flush=True)
            append_row(path.parent / FAILURES, {**{k: base[k] for k in ("model", "steps", "sampler", "scheduler")},
                                                "method": setting.method, "setting": setting.label, "error": text},
                       FAILURE_FIELDS)
            continue
        p, s = scores(result, reference_of("comfy", setting.per_batch, None, ""))
        p_own, s_own = scores(result, reference_of(setting.impl, setting.per_batch, result, setting.label))
        row = {**base, "method": setting.method, "setting": setting.label, "impl": setting.impl,
               "decides": "per prompt" if setting.per_batch else "batch", "full_calls": full_calls,
               "model_calls": statistics.mean(result.model_calls), "psnr": min(p, 100.0), "ssim": s,
               "psnr_own": min(p_own, 100.0), "ssim_own": s_own, "seconds_per_image": result.seconds}
        append_row(path, row)
        print(f"{model} {steps:3d} {sampler:9s} {scheduler:7s} {setting.method:9s} {setting.label:34s} calls "
              f"{row['model_calls']:5.1f}/{full_calls:.0f}  PSNR {p:6.2f}  SSIM {s:.3f}"
              + (f"  (own ref {p_own:6.2f})" if setting.impl != "comfy" else ""), flush=True)
    print(f"{model} {steps} {sampler}/{scheduler}: {len(pending)} settings in {time.perf_counter() - started:.0f} s",
          flush=True)
    return len(pending)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=Path, default=None, help="folder holding the peers' checkouts")
    parser.add_argument("--model", choices=("eps", "flow"), default="eps",
                        help="reference model: eps (ε-prediction digits UNet) or flow (flow-matching, shift 3)")
    parser.add_argument("--steps", default="20,25,30,50")
    parser.add_argument("--samplers", default="euler,dpmpp_2m,uni_pc,ddim,heun")
    parser.add_argument("--schedulers", default="normal,karras")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--cfg", type=float, default=3.0)
    parser.add_argument("--methods", default=None, help="only these methods (comma list: fewer, easycache, "
                        "lazycache, fsampler, zeus, sada, acceldiff_adaptive, spectrum, adaptive, speed_linear, speed_quadratic); "
                        "the reference always runs")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of peers_results.csv, peers_summary.md, peers_<steps>.png")
    parser.add_argument("--pack-settings", default=None, help="only these PACK_SETTINGS labels (comma list)")
    parser.add_argument("--check-fsampler-route", action="store_true",
                        help="only compare FSampler's simple node with the route the grid drives it by")
    parser.add_argument("--report-only", action="store_true", help="rewrite the tables and plots from the CSV")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "peers_results.csv"
    if migrate(path):
        print(f"{path}: model column added (eps, the only model of its rows)", flush=True)
    if not args.report_only:
        bench = Bench(model=args.model)
        loaded = load_peers(bench, args.peers)
        batch = prompts(args.prompts)
        if args.check_fsampler_route:
            text = check_fsampler_route(bench, batch, cfg=args.cfg)
            (args.out / "peers_fsampler_route.txt").write_text(text + "\n")  # quoted by peers_summary.md
            print(text)
            return 0
        for steps in (int(v) for v in args.steps.split(",")):
            for sampler in args.samplers.split(","):
                for scheduler in args.schedulers.split(","):
                    run_config(bench, steps, sampler, scheduler, args.cfg, batch, loaded, path,
                               set(args.methods.split(",")) if args.methods else None,
                               set(args.pack_settings.split(",")) if args.pack_settings else None, args.model)
    if path.exists():
        write_report(path, args.out, cfg=args.cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
