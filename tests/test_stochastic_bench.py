"""bench/stochastic.py on its smallest configuration: the real ComfyUI in a child process, the ε
reference model, one fresh-noise sampler and one Brownian-path sampler, 2 prompts, into a tmp folder."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_stochastic_bench_skips_fresh_noise_samplers_and_not_brownian_ones(tmp_path):
    command = [sys.executable, str(REPO / "bench" / "stochastic.py"), "--prompts", "2", "--models", "eps",
               "--only", "er_sde,dpmpp_2m_sde", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=REPO, env=os.environ)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in (tmp_path / "stochastic.md").read_text().splitlines() if line.startswith("| eps")]
    assert [row.split("|")[2].strip() for row in rows] == [
        "er_sde / karras", "dpmpp_2m_sde / karras", "dpmpp_2m_sde (measured with skips) / karras"]
    fresh, brownian, forced = ([cell.strip() for cell in row.split("|")] for row in rows)
    assert float(fresh[4]) <= 14 and re.fullmatch(r"-?\d+\.\d dB", fresh[6])  # 25 steps at about 2x, a PSNR
    assert brownian[4] == "30.0" and brownian[6] == "identical"  # unskipped: KSampler's picture
    assert "Brownian path" in brownian[9]
    assert float(forced[4]) < 30  # what skipping gives there, measured
