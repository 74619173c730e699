"""Per-sample vs per-batch decisions on one batch of 8 different prompts.

    python3 scripts/dev.py run bench/per_sample.py

The digits model, a batch of 8 prompts of different classes, 50 euler steps, cfg 3. For each δ and
each mode: batch rows sent to the model (cond and uncond rows both count), wall time, and PSNR
against the full-step images. Writes bench/results/per_sample.md.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root; the rest: bench/common.py

from reference.harness import Bench, prompts  # noqa: E402
from bench.common import RESULTS, mean_psnr  # noqa: E402

SETTINGS = dict(sampler_name="euler", scheduler="normal", cfg=3.0, steps=50, max_skip_steps=4,
                warmup_steps=4, keep_last_steps=1, noise_reuse="linear")


def main() -> int:
    bench = Bench()
    batch = prompts(8)  # classes 0-7, eight different noises
    full_settings = {k: v for k, v in SETTINGS.items() if k in ("sampler_name", "scheduler", "cfg", "steps")}
    full = bench.sample(batch, **full_settings)
    lines = ["Digits model, a batch of 8 prompts (classes 0-7), euler, 50 steps, cfg 3, noise_reuse linear. "
             "Rows = batch rows sent to the model over the run (cond + uncond); a full run sends "
             f"{2 * 8 * 50}. Command: `python3 scripts/dev.py run bench/per_sample.py`", "",
             "| δ | decisions | rows sent to the model | model calls | wall time | mean PSNR vs full | distinct paths |",
             "|---|---|---|---|---|---|---|"]
    for delta in (0.01, 0.02):
        for per_sample in (False, True):
            start = time.perf_counter()
            result = bench.sample(batch, "AdaptiveKSampler", threshold=delta, per_sample=per_sample, **SETTINGS)
            trace = result.trace
            seconds = time.perf_counter() - start
            quality = mean_psnr(result.images, full.images)
            lines.append(f"| {delta} | {'per sample' if per_sample else 'per batch (paper)'} | {trace.model_rows} | "
                         f"{trace.model_calls} | {seconds:.2f} s | {quality:.1f} dB | {len(set(result.masks))} |")
            print(lines[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "per_sample.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
