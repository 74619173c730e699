"""Measure the reference model: does an independent classifier recognise what it draws?

    python3 scripts/dev.py run reference/check_reference_model.py [--per-class 50] [--steps 50]

Draws `per-class` samples of every digit with the core KSampler (euler, full steps, cfg 3) through
the real ComfyUI, classifies them with the separately trained classifier, prints the accuracy.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reference.harness import Bench, Prompt  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--cfg", type=float, default=3.0)
    args = parser.parse_args()
    bench = Bench()
    correct = 0
    for digit in range(10):
        batch = [Prompt(noise_index=digit * args.per_class + i, digit=digit) for i in range(args.per_class)]
        images = bench.sample(batch, sampler_name="euler", scheduler="normal", cfg=args.cfg, steps=args.steps).images
        hits = int((bench.predicted_digits(images) == digit).sum())
        correct += hits
        print(f"digit {digit}: {hits}/{args.per_class} recognised", flush=True)
    total = 10 * args.per_class
    print(f"classifier accuracy on {total} samples ({args.steps} euler steps, cfg {args.cfg}): "
          f"{correct / total:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
