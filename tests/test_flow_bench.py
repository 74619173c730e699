"""bench/flow_graphs.py on its smallest configuration: the real ComfyUI in a child process, the flow
model on one single-model row, on SamplerCustomAdvanced with the MODEL patch and Flux2Scheduler, and the
expert pair on one two-stage row, 2 prompts, at 2x and 2.5x, into a tmp folder."""
from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROWS = ("euler-simple-20", "custom-flux2-20-cfg1", "experts-20")


def test_flow_graphs_writes_a_row_per_graph_with_sane_calls_and_psnr(tmp_path):
    command = [sys.executable, str(REPO / "bench" / "flow_graphs.py"), "--prompts", "2", "--only", ",".join(ROWS),
               "--speeds", "2x,2.5x", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=REPO, env=os.environ)
    assert done.returncode == 0, done.stderr[-3000:]

    with open(tmp_path / "flow_graphs.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["row"], r["speed"]) for r in rows] == [(name, speed) for name in ROWS for speed in ("2x", "2.5x")]
    for r in rows:
        steps, calls = int(r["steps"]), float(r["calls"])
        assert float(r["full_calls"]) == steps  # one network call a step, both experts counted
        assert 1 <= calls < steps  # the pack skipped something and did not skip everything
        assert math.isclose(float(r["achieved"]), steps / calls)
        assert math.isfinite(float(r["psnr"])) and 10 < float(r["psnr"]) <= 100
        assert r["fewer"] == "" or math.isfinite(float(r["fewer"]))
        assert "■" in r["notes"]
    assert rows[4]["notes"].count("stage ") == 2  # both Advanced nodes' traces
    calls = {(r["row"], r["speed"]): float(r["calls"]) for r in rows}
    # 2x = half the calls on each graph, the two-expert graph's switch included; 2.5x fewer still
    assert all(calls[name, "2x"] == 10 for name in ROWS), calls
    assert all(calls[name, "2.5x"] < calls[name, "2x"] for name in ROWS), calls
    assert (tmp_path / "flow_graphs.png").stat().st_size > 10_000  # a panel per row

    report = (tmp_path / "flow_graphs.md").read_text()
    assert "--only euler-simple-20,custom-flux2-20-cfg1,experts-20" in report
    assert "| single | euler / simple | 20 | 3 | 2x |" in report and "| experts | euler / simple | 20 | 3 | 2x |" in report
    assert "| custom | euler / Flux2Scheduler | 20 | 1 | 2x |" in report
