"""Speed benchmark: ComfyUI's SDXL UNet (real configuration, seeded random weights).

    python3 scripts/dev.py run bench/speed.py [--size 16] [--steps 12] [--device cpu|cuda]

Random weights say nothing about image quality but everything about cost. Three runs of the same
prompt through KSampler / Adaptive KSampler:
  full      core KSampler, N steps;
  no-skip   Adaptive KSampler whose skip path computes every step: the estimator and cache run
            in full, so (no-skip − full) / N is their overhead per step;
  adaptive  Adaptive KSampler following a fixed skip path with C computed steps.
Reports wall times, model-call reduction, speedup and their ratio (1.0 = every saved call is
saved time), the overhead per step, the cache's tensor bytes, and peak memory of each run.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root; the rest: bench/common.py

from bench.common import RESULTS  # noqa: E402


def build_sdxl_unet(device: str, dtype):
    import torch

    import comfy.model_patcher
    import comfy.supported_models
    # SDXL base 1.0's UNet configuration as ComfyUI detects it from the checkpoint.
    unet = dict(use_checkpoint=False, image_size=32, out_channels=4, use_spatial_transformer=True,
                legacy=False, num_classes="sequential", adm_in_channels=2816, dtype=dtype,
                in_channels=4, model_channels=320, num_res_blocks=[2, 2, 2],
                transformer_depth=[0, 0, 2, 2, 10, 10], channel_mult=[1, 2, 4],
                transformer_depth_middle=10, use_linear_in_transformer=True, context_dim=2048,
                num_head_channels=64, transformer_depth_output=[0, 0, 0, 2, 2, 2, 10, 10, 10],
                use_temporal_attention=False, use_temporal_resblock=False)
    config = comfy.supported_models.SDXL(unet)
    config.set_inference_dtype(dtype, None)
    model = config.get_model({}, device=device)
    generator = torch.Generator(device="cpu").manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator).to(parameter.dtype)
            scale = 0.02 if parameter.dim() > 1 else 0.0
            parameter.copy_(noise * scale + (1.0 if parameter.dim() == 1 and name.endswith("weight") else 0.0))
            parameter.requires_grad_(False)
    model.to(device)
    return comfy.model_patcher.ModelPatcher(model, load_device=torch.device(device),
                                            offload_device=torch.device(device))


def conditioning(device):
    import torch
    generator = torch.Generator().manual_seed(1)
    make = lambda: [[torch.randn(1, 77, 2048, generator=generator),  # noqa: E731
                     {"pooled_output": torch.randn(1, 1280, generator=generator)}]]
    return make(), make()


def cache_bytes(args, calls_per_step: int) -> int:
    """Noise-cache tensors at most: cond + uncond chunks × (points kept + 1) × latent, float32."""
    points = 3 + 1  # quadratic keeps 3 points, plus one spare
    return 2 * calls_per_step * points * 4 * args.size * args.size * 4


def timed(fn, device: str):
    """(result, seconds, peak memory in MB above the level before the call)."""
    import threading

    import psutil
    import torch
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    process = psutil.Process()
    rss_before, peak, done = process.memory_info().rss, [0], threading.Event()

    def watch_rss():  # CPU: sample the resident set while the run goes on
        while not done.wait(0.005):
            peak[0] = max(peak[0], process.memory_info().rss)

    watcher = threading.Thread(target=watch_rss, daemon=True)
    watcher.start()
    start = time.perf_counter()
    result = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    done.set()
    watcher.join()
    if device == "cuda":
        return result, seconds, (torch.cuda.max_memory_allocated() - before) / 2**20
    return result, seconds, max(peak[0] - rss_before, 0) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=16, help="latent height and width")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fp16", action="store_true")
    args = parser.parse_args()
    from devtools.inprocess import boot_comfyui
    boot_comfyui(cpu=args.device == "cpu")
    import torch

    import nodes
    if args.device == "cpu":
        torch.set_num_threads(2)
    dtype = torch.float16 if args.fp16 else torch.float32
    model = build_sdxl_unet(args.device, dtype)
    positive, negative = conditioning(args.device)
    latent = {"samples": torch.zeros(1, 4, args.size, args.size)}
    sampling = dict(seed=3, steps=args.steps, cfg=5.0, sampler_name="euler", scheduler="normal",
                    positive=positive, negative=negative, latent=latent, denoise=1.0)
    import tempfile

    from devtools.comfy_server import PACK_NAME, make_custom_nodes_dir
    from devtools.inprocess import load_packs, loaded_pack_hooks
    load_packs(make_custom_nodes_dir(Path(tempfile.mkdtemp())), [PACK_NAME])
    hooks = loaded_pack_hooks()

    def adaptive_run(skip_every: int):
        """Adaptive sampling on a fixed path: after the warm-up, skip every `skip_every`-th step."""
        path = tuple(k >= 4 and skip_every > 0 and k % skip_every == 1 for k in range(args.steps))
        traces = []
        patched = hooks.apply_adaptive_diffusion(model, hooks.AdaptiveConfig(threshold=0.01), traces.append,
                                                 skip_path=path)
        return nodes.common_ksampler(patched, **sampling)[0], traces[-1]

    nodes.common_ksampler(model, **{**sampling, "steps": 2})  # warm-up: load, allocate
    full, t_full, mem_full = timed(lambda: nodes.common_ksampler(model, **sampling), args.device)
    (no_skip, trace_ns), t_ns, mem_ns = timed(lambda: adaptive_run(skip_every=0), args.device)
    (fast, trace), t_fast, mem_fast = timed(lambda: adaptive_run(skip_every=2), args.device)
    calls_full, calls_fast = trace_ns.model_calls, trace.model_calls
    reduction = calls_full / calls_fast
    speedup = t_full / t_fast
    overhead = (t_ns - t_full) / args.steps
    per_call = t_full / calls_full
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads" if args.device == "cpu"
        else torch.cuda.get_device_name(),
        "device": args.device, "dtype": str(dtype), "latent": [1, 4, args.size, args.size], "steps": args.steps,
        "full_s": round(t_full, 3), "no_skip_s": round(t_ns, 3), "adaptive_s": round(t_fast, 3),
        "computed_steps": trace.computed_steps, "model_calls_full": calls_full, "model_calls_adaptive": calls_fast,
        "call_reduction": round(reduction, 3), "speedup": round(speedup, 3),
        "speedup_per_call_reduction": round(speedup / reduction, 3),
        "overhead_ms_per_step": round(overhead * 1000, 2), "overhead_vs_model_call": round(overhead / per_call, 4),
        "peak_memory_above_start_mb": {"full": round(mem_full, 1), "no_skip": round(mem_ns, 1),
                                       "adaptive": round(mem_fast, 1)},
        "max_abs_difference_no_skip_vs_full": float((no_skip["samples"] - full[0]["samples"]).abs().max()),
        "cache_mb_at_most": round(cache_bytes(args, calls_per_step=1) / 2**20, 3),
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"speed_{args.device}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
