#!/usr/bin/env python3
"""Full-size queue soak on a real ComfyUI server (the CI test runs a small one).

    python3 scripts/dev.py run bench/soak.py [--prompts 200] [--seed 0]

Two servers on 127.0.0.1: one gets every prompt queued at once (in two bursts, RSS read after the
first 20 and at the end), the other runs each prompt alone, in shuffled order. Prints the figures;
exits 1 when a queued result differs from its run alone or an AdaptiveRun outlives its prompt.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root; the rest: bench/common.py

from devtools.comfy_server import ComfyServer  # noqa: E402
from devtools.queue_soak import (WARM_PROMPTS, live_adaptive_runs, mismatches, run_alone,  # noqa: E402
                           run_queued, soak_prompts)

MIB = 1024 * 1024


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    comfyui_dir = os.environ.get("COMFYUI_DIR")
    if not comfyui_dir:
        print("COMFYUI_DIR is not set: run through `python3 scripts/dev.py run bench/soak.py`", file=sys.stderr)
        return 2
    prompts = soak_prompts(args.prompts, seed=args.seed)
    with tempfile.TemporaryDirectory() as soak_dir, tempfile.TemporaryDirectory() as alone_dir:
        soak = ComfyServer(Path(soak_dir), comfyui_dir).start()
        alone = ComfyServer(Path(alone_dir), comfyui_dir).start()
        try:
            queued = run_queued(soak, prompts)
            runs_left = live_adaptive_runs(soak, tag=900)
            expected = run_alone(alone, prompts)
        finally:
            soak.stop()
            alone.stop()
    wrong = mismatches(queued.results, expected, prompts)
    print(f"prompts: {len(prompts)} ({dict(Counter(p.route for p in prompts))})")
    print(f"queued run: {queued.seconds:.1f} s")
    print(f"server RSS after the first {WARM_PROMPTS}: {queued.rss_after_warm / MIB:.1f} MiB")
    print(f"server RSS at the end: {queued.rss_end / MIB:.1f} MiB "
          f"({(queued.rss_end - queued.rss_after_warm) / MIB:+.1f} MiB)")
    print(f"AdaptiveRun objects alive afterwards: {runs_left}")
    print(f"results that differ from the prompt run alone: {len(wrong)}")
    for line in wrong[:20]:
        print("  " + line)
    return 1 if wrong or runs_left else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
