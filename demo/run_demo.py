"""Headless demo: a real ComfyUI server runs Adaptive KSampler next to the core KSampler.

Run it with `python3 scripts/dev.py demo` (which builds the pinned host first if needed).
Prints, per sampler, the skip mask, model calls and the difference to the full-step result.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devtools.comfy_server import ComfyServer  # noqa: E402
from devtools.graphs import adaptive_graph, ksampler_graph  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="adaptive-demo-") as base:
        server = ComfyServer(Path(base), os.environ["COMFYUI_DIR"])
        print(f"Starting ComfyUI on {server.url} with the pack and the tiny fixture models...")
        server.start()
        try:
            print(f"\nAdaptive KSampler vs KSampler, {args.steps} steps, δ = {args.threshold}, "
                  "tiny SD-style UNet with seeded random weights\n")
            print(f"{'sampler':16s} {'mask (■ computed, □ skipped)':{args.steps + 2}s} steps  fewer calls  Δsum/Σ|x|")
            for sampler in ("euler", "dpmpp_2m", "uni_pc", "heun"):
                row(server, sampler, args)
        finally:
            server.stop()
    print("\nThe same summary line is in ComfyUI's log after every run.")
    return 0


def row(server: ComfyServer, sampler: str, args) -> None:
    settings = dict(sampler_name=sampler, steps=args.steps, seed=11)
    start = time.perf_counter()
    adaptive = server.run(adaptive_graph(threshold=args.threshold, **settings))
    full = server.run(ksampler_graph(**settings))
    mask = adaptive["10"]["adaptive_mask"][0].replace("1", "■").replace("0", "□")
    summary = adaptive["10"]["adaptive_summary"][0]
    speedup = summary.split("(")[-1].split("x")[0]
    difference = abs(adaptive["11"]["sum"][0] - full["11"]["sum"][0]) / max(full["11"]["abs_sum"][0], 1e-9)
    print(f"{sampler:16s} {mask:{args.steps + 2}s} {mask.count('■'):5d}  {speedup:>10s}x  "
          f"{difference:.1e}  ({time.perf_counter() - start:.1f}s)")


if __name__ == "__main__":
    sys.exit(main())
