"""Two or more bench/peers.py result CSVs of the pack's speed control side by side: PSNR at 40, 50
and 60 % of the full step count in calls (interpolated along each run's speed curve), per
configuration, and the mean over the configurations every run reached.

    python3 bench/studies/compare_runs.py bench/results/plan_vs_rank/rank_ec6dd68.csv bench/results/plan_vs_rank/plan_48146cc.csv
"""
from __future__ import annotations

import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root; the rest: bench/common.py

from bench.common import interpolate  # noqa: E402

SHARES = (0.4, 0.5, 0.6)


def speed_curves(path: Path, method: str = "speed_quadratic") -> dict[tuple, list[tuple[float, float]]]:
    curves: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    with open(path) as handle:
        for row in csv.DictReader(handle):
            if row["method"] == method:
                key = (int(row["steps"]), row["sampler"], row["scheduler"])
                curves[key].append((float(row["model_calls"]) / float(row["full_calls"]), float(row["psnr"])))
    return {key: sorted(points) for key, points in curves.items()}


def main(paths: list[str]) -> int:
    runs = {Path(p).stem: speed_curves(Path(p)) for p in paths}
    names = list(runs)
    print("| steps | sampler | scheduler | calls | " + " | ".join(names) + " |")
    print("|---" * (4 + len(names)) + "|")
    totals: dict[tuple[str, float], list[float]] = defaultdict(list)
    for key in sorted(set.intersection(*(set(r) for r in runs.values()))):
        for share in SHARES:
            values = [interpolate(runs[n][key], share) for n in names]
            print(f"| {key[0]} | {key[1]} | {key[2]} | {share:.0%} | "
                  + " | ".join("n/a" if v is None else f"{v:.1f}" for v in values) + " |")
            if all(v is not None for v in values):
                for name, value in zip(names, values):
                    totals[name, share].append(value)
    for share in SHARES:
        cells = len(totals[names[0], share])
        print(f"mean at {share:.0%} of calls over {cells} configurations: "
              + ", ".join(f"{n} {statistics.mean(totals[n, share]):.2f} dB" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
