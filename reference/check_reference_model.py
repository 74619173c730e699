"""Measure a reference model: does an independent classifier recognise what it draws?

    python3 scripts/dev.py run reference/check_reference_model.py [--model eps|flow|experts]
                                                                  [--per-class 50] [--steps N]

Draws `per-class` samples of every digit with euler at full steps and cfg 3 through the real
ComfyUI, classifies them with the separately trained classifier, prints the accuracy.
  eps      the ε-prediction digits model: core KSampler, `normal` scheduler, 50 steps by default.
  flow     the flow-matching model: core KSampler, `simple` scheduler, 20 steps by default.
  experts  the expert pair as the Wan 2.2 templates run it: KSamplerAdvanced with the high-noise
           expert for the steps above the boundary (leftover noise returned), then
           KSamplerAdvanced with the low-noise expert for the rest; `simple`, 20 steps.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reference.harness import MODELS, Bench, Prompt  # noqa: E402

DEFAULTS = {"eps": (50, "normal"), "flow": (20, "simple"), "experts": (20, "simple")}  # steps, scheduler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=MODELS, default="eps")
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--steps", type=int, help="50 for eps, 20 for flow and experts")
    parser.add_argument("--cfg", type=float, default=3.0)
    args = parser.parse_args()
    steps, scheduler = DEFAULTS[args.model]
    steps = args.steps or steps
    bench = Bench(model=args.model)
    settings = dict(sampler_name="euler", scheduler=scheduler, cfg=args.cfg, steps=steps)
    if args.model == "experts":
        print(f"high-noise expert for steps 0-{bench.expert_switch_step(steps, scheduler) - 1}, "
              f"low-noise expert for the rest", flush=True)
    correct = 0
    for digit in range(10):
        batch = [Prompt(noise_index=digit * args.per_class + i, digit=digit) for i in range(args.per_class)]
        sample = bench.sample_experts if args.model == "experts" else bench.sample
        images = sample(batch, **settings).images
        hits = int((bench.predicted_digits(images) == digit).sum())
        correct += hits
        print(f"digit {digit}: {hits}/{args.per_class} recognised", flush=True)
    total = 10 * args.per_class
    print(f"classifier accuracy on {total} samples of the {args.model} model ({steps} euler steps, "
          f"{scheduler}, cfg {args.cfg}): {correct / total:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
