"""The default speed (2x) on the sampler settings of ComfyUI's 2026 templates, on the trained
flow-matching digits model and the Wan 2.2-like expert pair, against plain fewer steps.

Each row: plain KSampler at full steps (the reference), Adaptive KSampler with every input at its
default (speed 2x; other speeds with --speeds) and plain KSampler at fewer steps, its PSNR
interpolated at the pack's mean calls. Two-stage rows run two KSamplerAdvanced nodes (the
high-noise model up to the harness's switch step with leftover noise, then the low-noise model);
the pack there is two Adaptive KSampler (Advanced) nodes, and fewer steps is the same two-stage
graph at fewer total steps (the switch step recomputed for that count). Model calls are counted at
the network's first layer, below every wrapper, on both models of a two-stage graph. The models'
built-in shift 3 is used (no ModelSamplingSD3 node). Also: the ε digits model in both stages of an
SDXL-style base → refiner graph (40 + 10 of 50 steps), and SamplerCustomAdvanced graphs with the
MODEL patch and a scheduler node (Flux2Scheduler, BasicScheduler), as Flux.2's template builds them.

    python3 scripts/dev.py run bench/flow_graphs.py [--prompts 10 --speeds 2x,1.5x --only a,b --out DIR]

Writes DIR/flow_graphs.md and DIR/flow_graphs.csv (bench/results/ by default), and with two or more
speeds DIR/flow_graphs.png (a panel per row: PSNR against calls, each speed against fewer steps).
"""
from __future__ import annotations

import argparse
import csv
import math
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root; the rest: bench/common.py

from reference.harness import Bench, BatchResult, prompts  # noqa: E402
from bench.common import REPO, RESULTS, interpolate, mean_psnr, psnr_panel  # noqa: E402
from devtools.inprocess import loaded_pack_hooks  # noqa: E402

# Adaptive KSampler as a newly placed node (speed replaced per run by --speeds).
DEFAULTS = dict(threshold=0.01, max_skip_steps=4, warmup_steps=4, keep_last_steps=1, noise_reuse="quadratic",
                per_sample=False)


@dataclass(frozen=True)
class Row:
    name: str
    graph: str            # "single" (flow model, KSampler), "custom" (flow model, SamplerCustomAdvanced + patch),
    #                       "experts" (the pair, two stages), "flow 2-stage"
    sampler: str
    scheduler: str
    steps: int
    cfg: float = 3.0
    fewer: tuple[int, ...] = ()  # plain step counts run besides those around the pack's calls
    switch_at: float | None = None  # two-stage rows: the second stage's share of the steps starts
    #                                 here (SDXL's base → refiner: 0.8); None: the experts' σ boundary


ROWS = (
    Row("euler-simple-20", "single", "euler", "simple", 20),
    Row("euler-simple-25", "single", "euler", "simple", 25),
    Row("uni_pc-simple-20", "single", "uni_pc", "simple", 20),
    Row("res_multistep-simple-25", "single", "res_multistep", "simple", 25),
    Row("euler-beta-30", "single", "euler", "beta", 30),
    Row("euler-simple-20-cfg1", "single", "euler", "simple", 20, cfg=1.0),
    Row("euler-simple-20-cfg4", "single", "euler", "simple", 20, cfg=4.0),
    Row("res_multistep-simple-8", "single", "res_multistep", "simple", 8, fewer=(6, 7)),
    Row("uni_pc-simple-20-cfg5", "single", "uni_pc", "simple", 20, cfg=5.0),
    Row("res_multistep-simple-25-cfg4", "single", "res_multistep", "simple", 25, cfg=4.0),
    # SamplerCustomAdvanced with the MODEL patch: Flux.2's Flux2Scheduler (1024x1024) at cfg 1, and
    # HunyuanVideo 1.5's BasicScheduler simple at cfg 6
    Row("custom-flux2-20-cfg1", "custom", "euler", "Flux2Scheduler", 20, cfg=1.0),
    Row("custom-simple-20-cfg6", "custom", "euler", "simple", 20, cfg=6.0),
    Row("experts-20", "experts", "euler", "simple", 20),
    Row("experts-40", "experts", "euler", "simple", 40),
    Row("flow-2stage-20", "flow 2-stage", "euler", "simple", 20),
    Row("flow-2stage-40", "flow 2-stage", "euler", "simple", 40),
    # SDXL-style base → refiner on the ε model (one model in both stages: no ε refiner here), 40 + 10
    Row("eps-base-refiner-50", "eps 2-stage", "euler", "normal", 50, switch_at=0.8),
    Row("eps-base-refiner-50-dpmpp_2m", "eps 2-stage", "dpmpp_2m", "karras", 50, switch_at=0.8),
)


@dataclass
class Run:
    result: BatchResult
    traces: list  # the Adaptive traces, one per node (empty for plain KSampler)


class Graphs:
    """The flow model and the expert pair in one ComfyUI; runs a row's graph with a sampler node."""

    def __init__(self) -> None:
        self.bench = Bench(model="experts")
        self.flow, _ = self.bench.load_model("flow")
        self.eps, _ = self.bench.load_model("eps")

    def models(self, row: Row) -> tuple:
        if row.graph == "experts":
            return self.bench.model, self.bench.low_noise_model
        if row.graph == "eps 2-stage":
            return self.eps, self.eps
        return self.flow, self.flow

    def run(self, row: Row, batch, steps: int, speed: str | None = None) -> Run:
        """The row's graph at `steps`: plain when `speed` is None, else the pack at that speed."""
        settings = dict(cfg=row.cfg, sampler_name=row.sampler, scheduler=row.scheduler)
        adaptive = {} if speed is None else dict(DEFAULTS, speed=speed)
        if row.graph == "single":
            return self.single(batch, steps, adaptive, settings)
        if row.graph == "custom":
            return self.custom(row, batch, steps, adaptive)
        return self.two_stages(row, batch, steps, adaptive, settings)

    def single(self, batch, steps: int, adaptive: dict, settings: dict) -> Run:
        node = "AdaptiveKSampler" if adaptive else "KSampler"
        traces: list = []

        def run(model, seed, positive, negative, latent_image):
            out = self.bench.call(node, model=model, seed=seed, steps=steps, positive=positive, negative=negative,
                                  latent_image=latent_image, denoise=1.0, **settings, **adaptive)
            traces.extend(out[1:])
            return out[:1]  # the harness then counts the network's calls, not the trace's
        return Run(self.bench.sample_with(batch, run, self.flow), traces)

    def custom(self, row: Row, batch, steps: int, adaptive: dict) -> Run:
        """RandomNoise, CFGGuider, KSamplerSelect and a scheduler node into SamplerCustomAdvanced,
        the model through the pack's MODEL patch (what AdaptiveDiffusionPatch applies)."""
        traces: list = []
        call = self.bench.call

        def run(model, seed, positive, negative, latent_image):
            if adaptive:
                hooks = loaded_pack_hooks()
                model = hooks.apply_adaptive_diffusion(model, hooks.AdaptiveConfig(**adaptive), on_trace=traces.append)
            (sigmas,) = call("Flux2Scheduler", steps=steps, width=1024, height=1024) if row.scheduler == "Flux2Scheduler" \
                else call("BasicScheduler", model=model, scheduler=row.scheduler, steps=steps, denoise=1.0)
            (guider,) = call("CFGGuider", model=model, positive=positive, negative=negative, cfg=row.cfg)
            (noise,) = call("RandomNoise", noise_seed=seed)
            (sampler,) = call("KSamplerSelect", sampler_name=row.sampler)
            return call("SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                        latent_image=latent_image)[:1]
        return Run(self.bench.sample_with(batch, run, self.flow), traces)

    def two_stages(self, row: Row, batch, steps: int, adaptive: dict, settings: dict) -> Run:
        high, low = self.models(row)
        node = "AdaptiveKSamplerAdvanced" if adaptive else "KSamplerAdvanced"
        switch = self.bench.expert_switch_step(steps, row.scheduler, high) if row.switch_at is None \
            else round(row.switch_at * steps)
        traces: list = []

        def stage(model, latent, first: bool, **common):
            out = self.bench.call(node, model=model, latent_image=latent, steps=steps,
                                  add_noise="enable" if first else "disable",
                                  start_at_step=0 if first else switch, end_at_step=switch if first else steps,
                                  return_with_leftover_noise="enable" if first else "disable",
                                  **common, **settings, **adaptive)
            traces.extend(out[1:])
            return out[0]

        def run(model, seed, positive, negative, latent_image):
            common = dict(noise_seed=seed, positive=positive, negative=negative)
            return (stage(low, stage(model, latent_image, True, **common), False, **common),)
        # the same model in both stages has one first layer: counting it twice would double its calls
        also = () if low is high else (low,)
        return Run(self.bench.sample_with(batch, run, high, also_count=also), traces)


def fewer_steps(calls: list[float], steps: int, extra: tuple[int, ...]) -> list[int]:
    """Plain step counts bracketing each of the pack's calls (one call a step on these graphs)."""
    counts = set(extra)
    for c in calls:
        counts.update(range(max(1, math.floor(c) - 1), min(steps, math.ceil(c) + 2)))
    return sorted(n for n in counts if n < steps)


def trace_notes(traces: list) -> str:
    """The notes and mask of each node's trace (per_sample off: one decision for every prompt)."""
    parts = []
    for i, trace in enumerate(traces):
        label = f"stage {i + 1}: " if len(traces) > 1 else ""
        notes = " / ".join(trace.notes) or "no notes"
        parts.append(f"{label}`{trace.mask_text()}` {notes}")
    return " ‖ ".join(parts)


def study(graphs: Graphs, row: Row, batch, speeds: list[str]) -> list[dict]:
    full = graphs.run(row, batch, row.steps).result
    full_calls = full.model_calls[0]

    def score(result: BatchResult) -> float:
        return mean_psnr(result.images, full.images, ceiling=100.0)
    packs = {speed: graphs.run(row, batch, row.steps, speed) for speed in speeds}
    calls = {speed: statistics.mean(run.result.model_calls) for speed, run in packs.items()}
    curve = []
    for n in fewer_steps(list(calls.values()), row.steps, row.fewer):
        result = graphs.run(row, batch, n).result
        curve.append((result.model_calls[0], score(result)))
    rows = []
    for speed, run in packs.items():
        psnr, fewer = score(run.result), interpolate(curve, calls[speed])
        rows.append({"row": row.name, "graph": row.graph, "sampler": row.sampler, "scheduler": row.scheduler,
                     "steps": row.steps, "cfg": row.cfg, "speed": speed, "full_calls": full_calls,
                     "calls": calls[speed], "achieved": full_calls / calls[speed], "psnr": psnr, "fewer": fewer,
                     "margin": None if fewer is None else psnr - fewer,
                     "fewer_points": " ".join(f"{c:g}:{p:.1f}" for c, p in sorted(curve)),
                     "notes": trace_notes(run.traces)})
    return rows


def code_version() -> str:
    """The commit the pack's code is at, "+changes" when its code in the work tree differs from it.
    (Not imported from bench/all_samplers.py: importing that script puts the repository before
    ComfyUI on sys.path again, and `import nodes` would then find the pack's nodes/.)"""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--", "adaptive_core", "nodes")
    return (git("rev-parse", "--short", "HEAD") or "unknown") + ("+changes" if dirty else "")


FIELDS = ("row", "graph", "sampler", "scheduler", "steps", "cfg", "speed", "full_calls", "calls", "achieved",
          "psnr", "fewer", "margin", "fewer_points", "notes")


def save_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows({k: "" if r[k] is None else r[k] for k in FIELDS} for r in rows)


def dB(value: float | None, sign: bool = False) -> str:
    return "n/a" if value is None else f"{value:+.1f} dB" if sign else f"{value:.1f} dB"


def report(rows: list[dict], command: str, prompts_count: int) -> str:
    lines = ["# Adaptive KSampler on flow-matching graphs and two-expert graphs", "",
             f"Command: `{command}`", "",
             f"Settings: the trained flow-matching digits model (FLOW, velocity, its built-in shift 3: no "
             f"ModelSamplingSD3 node) and the Wan 2.2-like expert pair (high-noise expert before the harness's "
             f"switch step, at σ 0.875, with leftover noise; then the low-noise expert); {prompts_count} prompts "
             "(digits cycling 0-9, noise rows 0 to prompts - 1, seed 1000). Adaptive KSampler (Advanced) with every input at a newly placed node's "
             "default (speed 2x, quadratic, warm-up 4, last step kept, Cmax 4, one decision per batch). "
             "Two-stage rows: two Advanced nodes, each over its stage, calls of both models together "
             "(ε 2-stage: the ε digits model in both stages of an SDXL-style base → refiner split, 40 + 10 of 50 "
             "steps). Custom rows: RandomNoise, CFGGuider, KSamplerSelect and BasicScheduler or Flux2Scheduler "
             "(1024x1024) into SamplerCustomAdvanced, the model through the pack's MODEL patch. "
             "Calls: real network calls per prompt, counted at the network's first layer. PSNR against the "
             "same graph with plain KSampler(Advanced) at full steps; fewer steps: the same graph with plain "
             "nodes at fewer total steps, interpolated at the pack's calls (n/a: outside the measured points). "
             f"Code at {code_version()}.", "",
             "| graph | sampler / scheduler | steps | cfg | speed | calls | speed achieved | PSNR | "
             "fewer steps at equal calls | margin |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['graph']} | {r['sampler']} / {r['scheduler']} | {r['steps']} | {r['cfg']:g} | "
                     f"{r['speed']} | {r['calls']:.1f} | {r['achieved']:.2f}x | {dB(r['psnr'])} | "
                     f"{dB(r['fewer'])} | {dB(r['margin'], sign=True)} |")
    lines += ["", "## What the pack did (trace of the batch: mask ■ computed □ skipped, and its notes)", ""]
    lines += [f"- **{r['row']}** {r['speed']}: {r['notes']}" for r in rows]
    lines += ["", "Fewer-steps points (calls:PSNR) per row:", ""]
    points = {r["row"]: r["fewer_points"] for r in rows}  # one curve per row, whatever the speeds
    lines += [f"- {name}: {curve}" for name, curve in points.items()]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """A panel per row: PSNR against model calls, the pack at each speed against plain fewer steps."""
    from matplotlib.figure import Figure
    names = list(dict.fromkeys(r["row"] for r in rows))
    columns = min(3, len(names))
    lines = math.ceil(len(names) / columns)
    figure = Figure(figsize=(4.6 * columns, 3.4 * lines), dpi=80)
    for index, name in enumerate(names):
        mine = [r for r in rows if r["row"] == name]
        axes = figure.add_subplot(lines, columns, index + 1)
        curve = sorted(tuple(float(v) for v in point.split(":")) for point in mine[0]["fewer_points"].split())
        if curve:
            axes.plot(*zip(*curve), color="#888888", marker="o", ms=3, lw=1.2, label="fewer steps (plain)")
        pack = sorted((r["calls"], r["psnr"], r["speed"]) for r in mine)
        axes.plot([c for c, _, _ in pack], [p for _, p, _ in pack], color="#1f77b4", marker="s", ms=4, lw=1.4,
                  label="Adaptive KSampler, speed")
        for calls, psnr, speed in pack:
            axes.annotate(speed, (calls, psnr), textcoords="offset points", xytext=(3, 4), fontsize=7)
        first = mine[0]
        psnr_panel(axes, f"{first['graph']}: {first['sampler']} / {first['scheduler']}, {first['steps']} steps, "
                   f"cfg {first['cfg']:g}", f"model calls per image (full: {first['full_calls']:.0f})")
    figure.tight_layout()
    figure.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--speeds", default="2x", help="comma list of Adaptive KSampler speeds, e.g. 2x,1.5x,2.5x,3x")
    parser.add_argument("--only", default=None, help="comma list of row names: " + ", ".join(r.name for r in ROWS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    chosen = [r for r in ROWS if args.only is None or r.name in args.only.split(",")]
    if not chosen:
        parser.error(f"--only names none of: {', '.join(r.name for r in ROWS)}")
    graphs, batch, rows = Graphs(), prompts(args.prompts), []
    for row in chosen:
        for r in study(graphs, row, batch, args.speeds.split(",")):
            rows.append(r)
            print(f"{r['row']:24s} {r['speed']:5s} calls {r['calls']:5.1f}/{r['full_calls']:.0f}  "
                  f"PSNR {r['psnr']:6.1f}  fewer {dB(r['fewer'])}  {r['notes']}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    save_csv(args.out / "flow_graphs.csv", rows)
    command = (f"python3 scripts/dev.py run bench/flow_graphs.py --prompts {args.prompts} --speeds {args.speeds}"
               + (f" --only {args.only}" if args.only else ""))
    text = report(rows, command, args.prompts)
    (args.out / "flow_graphs.md").write_text(text)
    if len(args.speeds.split(",")) > 1:  # one curve per row: the speeds against fewer steps
        plot(rows, args.out / "flow_graphs.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
