"""Per-step overhead of Adaptive KSampler over KSampler, on a model that costs almost nothing.

    python3 scripts/dev.py run bench/overhead.py [--steps 20] [--repeats 9] [--device cpu]

The model is a real ComfyUI model class (SD1.5-style BaseModel for images, Wan 2.1 for 5-D video
latents) built from a tiny configuration, whose diffusion network is replaced by one multiply-add:
every ComfyUI code path around the network runs (CFG batching, calculate_input/denoised, the
sampler's update), the network itself is free. So the difference between Adaptive KSampler and the
core KSampler on the same graph is the pack's own per-step work:

  nothing skipped  δ = 1e-9: the criterion is evaluated every step, the noise cache is filled
                   every call, but no step passes the test;
  skipping         δ = 1: every step the rules allow is skipped (answered from the cache), so the
                   cache's extrapolation runs too. A skipped step also saves ComfyUI's own call
                   machinery, which this model makes the only cost of a call: the figure can be
                   lower than "nothing skipped".

overhead per step = (median Adaptive wall time − median KSampler wall time) / steps, each median over
`--repeats` interleaved runs after one untimed warm-up run. Latents: SDXL 1024×1024 ([B, 4, 128, 128])
and Wan 2.1 416×240, 33 frames ([B, 16, 9, 30, 52]); batch 1 and 8; per_sample off and on; cfg 4
(cond and uncond batched in one call), euler, normal schedule. On the CPU: 1 torch thread and glibc
keeping freed memory (see keep_freed_memory), which make the figures steady on a shared machine; they
include the pack's tensor work (on a GPU that is queued asynchronously; there the host syncs and the
Python work per step are what remains). Writes bench/results/overhead.{md,json} and prints the table.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root; the rest: bench/common.py

from bench.common import RESULTS  # noqa: E402

COMMAND = "python3 scripts/dev.py run bench/overhead.py"

LATENTS = {"image": (4, 128, 128), "video": (16, 9, 30, 52)}  # per batch row
LATENT_NAMES = {"image": "image [B,4,128,128] (SDXL 1024²)", "video": "video [B,16,9,30,52] (Wan 2.1, 33 frames)"}
MODES = {"nothing skipped": 1e-9, "skipping": 1.0}  # δ of each Adaptive run
ADAPTIVE = dict(max_skip_steps=4, warmup_steps=4, keep_last_steps=1, noise_reuse="linear")


@dataclass
class Row:
    latent: str
    batch: int
    per_sample: bool
    steps: int
    ksampler_ms_per_step: float
    nothing_skipped_us_per_step: float
    nothing_skipped_computed: int
    skipping_us_per_step: float
    skipping_computed: int


def near_zero_cost_model(kind: str, device: str):
    """A ModelPatcher around a real ComfyUI model whose network is one multiply-add."""
    import torch

    import comfy.model_patcher
    import comfy.supported_models

    if kind == "image":
        unet = dict(image_size=32, in_channels=4, out_channels=4, model_channels=32, num_res_blocks=[1],
                    channel_mult=[1], transformer_depth=[1], transformer_depth_output=[1, 1],
                    transformer_depth_middle=1, use_spatial_transformer=True, context_dim=32, num_heads=2,
                    num_head_channels=-1, legacy=False, adm_in_channels=None, use_linear_in_transformer=False,
                    use_temporal_resblock=False, use_temporal_attention=False, dtype=torch.float32,
                    use_checkpoint=False)
        config, out_channels = comfy.supported_models.SD15(unet), 4
    else:
        wan = dict(image_model="wan2.1", model_type="t2v", patch_size=(1, 2, 2), text_len=8, in_dim=16, dim=16,
                   ffn_dim=16, freq_dim=16, text_dim=32, out_dim=16, num_heads=1, num_layers=1,
                   window_size=(-1, -1), qk_norm=True, cross_attn_norm=True, eps=1e-6)
        config, out_channels = comfy.supported_models.WAN21_T2V(wan), 16
    model = config.get_model({})

    def near_zero_cost_forward(x, timesteps, context=None, **kwargs):
        # The output depends on x and on the cond (so cond and uncond differ), nothing else runs.
        return x[:, :out_channels] * 0.1 + context.mean() * 0.01

    # The real network object stays (ComfyUI reads its dtype and, for Wan, its patch embedding's
    # shape); only its forward is replaced.
    model.diffusion_model.forward = near_zero_cost_forward
    return comfy.model_patcher.ModelPatcher(model, load_device=torch.device(device),
                                            offload_device=torch.device(device))


def keep_freed_memory() -> bool:
    """Ask glibc to serve the sampler's tensors from a heap it keeps (no mmap/munmap per tensor).

    Otherwise each run faults its freshly mapped pages in again, and that kernel time (several ms
    per run, varying with what else the machine does) drowns the figures measured here. PyTorch's
    CUDA allocator keeps freed blocks the same way. Returns False where this is not glibc."""
    import ctypes
    import ctypes.util
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 * 2**20) and libc.mallopt(M_TRIM_THRESHOLD, 2**30))
    except (OSError, AttributeError):
        return False


def conditioning(seed: int) -> list:
    import torch
    generator = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, 8, 32, generator=generator), {}]]


class Sampler:
    """One graph (model, prompt, latent) run through KSampler or Adaptive KSampler, timed."""

    def __init__(self, mappings, kind: str, batch: int, steps: int, device: str):
        import torch
        self.mappings, self.device = mappings, device
        self.inputs = dict(model=near_zero_cost_model(kind, device), positive=conditioning(1),
                           negative=conditioning(2), latent_image={"samples": torch.zeros(batch, *LATENTS[kind])},
                           seed=3, steps=steps, cfg=4.0, sampler_name="euler", scheduler="normal", denoise=1.0)

    def run(self, adaptive: dict | None):
        """Wall seconds of one run, and the trace (None for KSampler)."""
        from devtools.inprocess import call_node
        node, extra = ("KSampler", {}) if adaptive is None else ("AdaptiveKSampler", {**ADAPTIVE, **adaptive})
        self._synchronize()
        start = time.perf_counter()
        outputs = call_node(self.mappings, node, **self.inputs, **extra)
        self._synchronize()
        return time.perf_counter() - start, (outputs[1] if adaptive is not None else None)

    def _synchronize(self) -> None:
        if self.device == "cuda":
            import torch
            torch.cuda.synchronize()


def measure(sampler: Sampler, steps: int, repeats: int, kind: str, batch: int) -> list[Row]:
    """Median wall time of KSampler and of each Adaptive variant (per_sample off and on) over
    interleaved repeats, so that drift hits all of them alike; one row per per_sample setting."""
    variants = {("ksampler", None): None}
    for per_sample in (False, True):
        for mode, delta in MODES.items():
            variants[(mode, per_sample)] = dict(threshold=delta, per_sample=per_sample)
    times: dict = {key: [] for key in variants}
    computed: dict = {}
    for repeat in range(repeats + 1):
        for key, adaptive in variants.items():
            seconds, trace = sampler.run(adaptive)
            if repeat:  # the first round warms caches and allocations up
                times[key].append(seconds)
            if trace is not None:
                computed[key] = trace.computed_steps
    median = {key: statistics.median(values) for key, values in times.items()}
    base = median[("ksampler", None)]
    over_us = lambda key: round((median[key] - base) / steps * 1e6, 1)  # noqa: E731
    return [Row(LATENT_NAMES[kind], batch, per_sample, steps, round(base / steps * 1e3, 3),
                over_us(("nothing skipped", per_sample)), computed[("nothing skipped", per_sample)],
                over_us(("skipping", per_sample)), computed[("skipping", per_sample)])
            for per_sample in (False, True)]


def table_rows(rows: list[Row]) -> list[str]:
    """The Markdown table (docs/benchmark.md quotes it as it is)."""
    lines = ["| latent | batch | per_sample | KSampler itself, per step | overhead per step, nothing skipped | "
             "overhead per step, skipping |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.latent} | {r.batch} | {'on' if r.per_sample else 'off'} | "
                     f"{r.ksampler_ms_per_step * 1000:.0f} µs | {r.nothing_skipped_us_per_step:.0f} µs"
                     # should the decision ever skip at δ = 1e-9, say so rather than mislabel the row
                     f"{'' if r.nothing_skipped_computed == r.steps else f' ({r.nothing_skipped_computed}/{r.steps} computed)'} | "
                     f"{r.skipping_us_per_step:.0f} µs ({r.skipping_computed}/{r.steps} steps computed) |")
    return lines


def table(rows: list[Row], header: dict) -> str:
    intro = (f"Adaptive KSampler's per-step overhead over KSampler on a near-zero-cost model "
             f"(ComfyUI {header['comfyui']}, {header['machine']}, torch {header['torch']}, {header['device']}). "
             f"Median of {header['repeats']} "
             f"runs of {header['steps']} euler steps, cfg 4. Command: `{COMMAND}`")
    return "\n".join([intro, "", *table_rows(rows)]) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: the steadiest figures on a shared machine)")
    args = parser.parse_args(argv)
    heap_kept = keep_freed_memory() if args.device == "cpu" else None
    from devtools.inprocess import boot_comfyui, load_packs
    boot_comfyui(cpu=args.device == "cpu")
    import torch

    import comfy.utils
    torch.set_num_threads(args.threads)
    comfy.utils.PROGRESS_BAR_ENABLED = False  # no progress bar in the timed runs or the output
    from devtools.comfy_server import PACK_NAME, make_custom_nodes_dir
    mappings = load_packs(make_custom_nodes_dir(Path(tempfile.mkdtemp())), [PACK_NAME])

    started = time.perf_counter()
    rows = []
    for kind in LATENTS:
        for batch in (1, 8):
            sampler = Sampler(mappings, kind, batch, args.steps, args.device)
            rows += measure(sampler, args.steps, args.repeats, kind, batch)
            print(f"{kind}, batch {batch}: done", flush=True)
    machine = (torch.cuda.get_device_name() if args.device == "cuda"
               else f"{platform.processor() or platform.machine()}, torch threads: {torch.get_num_threads()}")
    import comfyui_version
    header = {"machine": machine, "comfyui": comfyui_version.__version__, "torch": torch.__version__,
              "device": args.device, "steps": args.steps,
              "repeats": args.repeats, "command": COMMAND, "glibc_heap_kept": heap_kept, "seconds": round(time.perf_counter() - started, 1)}
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if args.device == "cpu" else f"_{args.device}"
    (RESULTS / f"overhead{suffix}.json").write_text(
        json.dumps({**header, "rows": [asdict(r) for r in rows]}, indent=1, ensure_ascii=False) + "\n")
    text = table(rows, header)
    (RESULTS / f"overhead{suffix}.md").write_text(text)
    print("\n" + text + f"\n{header['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
