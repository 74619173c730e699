"""Headless demo: a real ComfyUI server draws digits with KSampler and with Adaptive KSampler.

    python3 scripts/dev.py demo [--out demo_output] [--steps 50]

Starts ComfyUI on 127.0.0.1 with this pack and the digits pack (reference/digits_pack/), runs the
same seeds and classes through both samplers, and writes to the output folder: grid.png (full
steps | adaptive, one row per prompt), one skip-mask picture per adaptive run (different classes
get different skip paths), and results.md (computed steps, model calls, wall time, PSNR).
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devtools.comfy_server import ComfyServer  # noqa: E402

DIGITS = tuple(range(10))
SEEDS = (1, 2)


def digits_graph(digit: int, seed: int, steps: int, adaptive: bool) -> dict:
    sampler = {"class_type": "AdaptiveKSampler" if adaptive else "KSampler", "inputs": {
        "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
        "seed": seed, "steps": steps, "cfg": 3.0, "sampler_name": "euler", "scheduler": "normal",
        "denoise": 1.0}}
    if adaptive:  # what a newly placed node has (its widget defaults, speed included)
        sampler["inputs"].update(threshold=0.01, max_skip_steps=4, warmup_steps=4, keep_last_steps=1,
                                 noise_reuse="quadratic", per_sample=False, speed="2x")
    graph = {
        "1": {"class_type": "AdaptiveDemoDigitsModel", "inputs": {}},
        "2": {"class_type": "AdaptiveDemoDigitClass", "inputs": {"digit": str(digit)}},
        "3": {"class_type": "AdaptiveDemoDigitClass", "inputs": {"digit": "none"}},
        "4": {"class_type": "AdaptiveDemoDigitsLatent", "inputs": {"batch_size": 1}},
        "5": sampler,
        "6": {"class_type": "AdaptiveDemoDecodeDigits", "inputs": {"samples": ["5", 0]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0],
                                                    "filename_prefix": f"digit{digit}_seed{seed}_{'adaptive' if adaptive else 'full'}"}},
    }
    if adaptive:
        graph["8"] = {"class_type": "AdaptiveSkipMaskPreview", "inputs": {"trace": ["5", 1]}}
    return graph


def run(server: ComfyServer, graph: dict) -> tuple[dict, float]:
    """Outputs and the prompt's execution time (from the server's own timestamps)."""
    entry = server.wait(server.queue(graph))
    if entry["status"].get("status_str") == "error":
        raise RuntimeError(f"demo prompt failed: {entry['status'].get('messages')}")
    times = {name: data.get("timestamp") for name, data in entry["status"]["messages"]}
    seconds = (times["execution_success"] - times["execution_start"]) / 1000
    return entry["outputs"], seconds


def saved_file(server: ComfyServer, outputs: dict, node: str) -> Path:
    image = outputs[node]["images"][0]
    return server.base_dir / image.get("type", "output") / image.get("subfolder", "") / image["filename"]


def psnr(a, b) -> float:
    import numpy as np
    mse = float(np.mean((a.astype("float64") - b.astype("float64")) ** 2)) / 255.0 ** 2
    return 100.0 if mse == 0 else 10 * math.log10(1 / mse)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(REPO / "demo_output"))
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--digits", default=",".join(map(str, DIGITS)))
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    args = parser.parse_args()
    digits = [int(d) for d in args.digits.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="adaptive-demo-") as base:
        server = ComfyServer(Path(base), os.environ["COMFYUI_DIR"])
        print(f"Starting ComfyUI on {server.url} with AdaptiveDiffusion and the demo digits model...")
        server.start()
        try:
            rows = [demo_row(server, digit, seed, args.steps, out) for seed in seeds for digit in digits]
        finally:
            server.stop()
    write_grid(rows, digits, out / "grid.png")
    write_table(rows, args.steps, out / "results.md")
    print((out / "results.md").read_text())
    print(f"Wrote {out / 'grid.png'}, {out / 'results.md'} and {len(rows)} skip-mask pictures in {out / 'masks'}")
    return 0


def demo_row(server: ComfyServer, digit: int, seed: int, steps: int, out: Path) -> dict:
    from PIL import Image
    import numpy as np
    full_out, full_seconds = run(server, digits_graph(digit, seed, steps, adaptive=False))
    fast_out, fast_seconds = run(server, digits_graph(digit, seed, steps, adaptive=True))
    full = np.array(Image.open(saved_file(server, full_out, "7")))
    fast = np.array(Image.open(saved_file(server, fast_out, "7")))
    mask_copy = out / "masks" / f"digit{digit}_seed{seed}.png"
    shutil.copy(saved_file(server, fast_out, "8"), mask_copy)
    calls, cached = fast_out["5"]["adaptive_calls"]
    mask = fast_out["5"]["adaptive_mask"][0].replace("1", "■").replace("0", "□")
    return {"digit": digit, "seed": seed, "full": full, "fast": fast, "mask": mask, "calls": calls,
            "full_calls": calls + cached, "full_seconds": full_seconds, "fast_seconds": fast_seconds,
            "psnr": psnr(fast, full)}


def write_grid(rows: list[dict], digits: list[int], path: Path) -> None:
    """Pairs (full | adaptive) of 4× upscaled digits, one column per class, one row per seed."""
    from PIL import Image
    tile = 64
    seeds = sorted({r["seed"] for r in rows})
    grid = Image.new("RGB", (len(digits) * (2 * tile + 8), len(seeds) * (tile + 8)), "white")
    for r in rows:
        x = digits.index(r["digit"]) * (2 * tile + 8)
        y = seeds.index(r["seed"]) * (tile + 8)
        for offset, key in ((0, "full"), (tile, "fast")):
            image = Image.fromarray(r[key]).resize((tile, tile), Image.NEAREST)
            grid.paste(image, (x + offset, y))
    grid.save(path)


def write_table(rows: list[dict], steps: int, path: Path) -> None:
    lines = [f"Digits model, euler, {steps} steps, cfg 3, Adaptive KSampler at its defaults. "
             "PSNR of the adaptive image against the full-step image of the same seed.", "",
             "| digit | seed | skip mask (■ computed, □ skipped) | model calls (full → adaptive) | wall time (full → adaptive) | PSNR |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['digit']} | {r['seed']} | `{r['mask']}` | {r['full_calls']} → {r['calls']} | "
                     f"{r['full_seconds']:.2f} s → {r['fast_seconds']:.2f} s | {r['psnr']:.1f} dB |")
    mean_psnr = sum(r["psnr"] for r in rows) / len(rows)
    calls = sum(r["calls"] for r in rows) / len(rows)
    distinct = len({r["mask"] for r in rows})
    lines += ["", f"Mean: {calls:.1f} model calls instead of {rows[0]['full_calls']}, PSNR {mean_psnr:.1f} dB; "
              f"{distinct} different skip paths over {len(rows)} prompts."]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
