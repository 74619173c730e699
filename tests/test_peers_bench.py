"""bench/peers.py's core path on a tiny grid: the real ComfyUI in a child process, the trained digits
model, fewer steps and the pack, no peers folder (each missing peer is named), resumable CSV, report."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STEPS = 12
PACK = ("quadratic Cmax 1 δ=0.3", "linear Cmax 2 δ=0.3")  # two of bench/peers.py's PACK_SETTINGS


def run_peers(out: Path, *extra: str) -> str:
    command = [sys.executable, str(REPO / "bench" / "peers.py"), "--peers", str(out / "no-peers-here"),
               "--steps", str(STEPS), "--samplers", "euler", "--schedulers", "normal", "--prompts", "2",
               "--methods", "fewer,adaptive", "--pack-settings", ",".join(PACK), "--out", str(out), *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO, env=os.environ)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_tiny_grid_writes_rows_report_and_names_missing_peers(tmp_path):
    first = run_peers(tmp_path)
    for repo in ("obisin/ComfyUI-FSampler", "jiajianxie/ComfyUI-AccelDiff", "ruwwww/ComfyUI-Spectrum-sdxl"):
        assert f"peer folder missing: {tmp_path / 'no-peers-here'}" in first and repo in first

    with open(tmp_path / "peers_results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["method"] for r in rows} == {"full", "fewer", "adaptive"}
    assert all(r["steps"] == str(STEPS) and r["prompts"] == "2" and r["sampler"] == "euler" for r in rows)
    full = next(r for r in rows if r["method"] == "full")
    assert float(full["model_calls"]) == STEPS and float(full["psnr"]) == 100.0
    for row in rows:
        if row["method"] == "fewer":  # plain KSampler at n steps: n network calls, short of the reference
            assert float(row["model_calls"]) == int(row["setting"].split()[0]) < STEPS
            assert float(row["psnr"]) < 100.0
    pack = {r["setting"]: float(r["model_calls"]) for r in rows if r["method"] == "adaptive"}
    assert set(pack) == set(PACK) and all(calls < STEPS for calls in pack.values())

    summary = (tmp_path / "peers_summary.md").read_text()
    assert "| 12 | euler | normal | 4.8 (40%) |" in summary
    assert (tmp_path / f"peers_{STEPS}.png").stat().st_size > 10_000

    again = run_peers(tmp_path)  # resumable: every row is already in the CSV
    with open(tmp_path / "peers_results.csv") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
    assert "PSNR" not in again


def run_bench(script: str, *args: str) -> str:
    """A bench/ script in a child process (its own ComfyUI); its stdout."""
    command = [sys.executable, str(REPO / "bench" / script), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=REPO, env=os.environ)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def run_all_samplers(out: Path, sampler: str) -> None:
    run_bench("all_samplers.py", "--steps", "8", "--samplers", sampler, "--schedulers", "normal", "--prompts", "2",
              "--out", str(out))


def test_all_samplers_replaces_only_the_rows_it_reran_and_names_their_commit(tmp_path):
    run_all_samplers(tmp_path, "euler")
    run_all_samplers(tmp_path, "ddim")
    run_all_samplers(tmp_path, "euler")
    with open(tmp_path / "all_samplers_8.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["sampler"], r["scheduler"]) for r in rows] == [("euler", "normal"), ("ddim", "normal")]
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    assert all(r["commit"].startswith(head.strip()) and float(r["calls"]) < 8 for r in rows)
    report = (tmp_path / "all_samplers_8.md").read_text()
    assert "| euler | normal |" in report and "| ddim | normal |" in report and "(2 rows)" in report


def run_mask_search(out: Path, *extra: str) -> str:
    return run_bench("mask_search.py", "--steps", "12", "--sampler", "euler", "--scheduler", "karras", "--calls", "8",
                     "--prompts", "2", "--out", str(out), *extra)


def test_mask_search_runs_the_masks_it_reports_and_keeps_the_best(tmp_path):
    """Every scored mask ran at the asked calls (a mask the run did not follow scores -inf), the best is
    at least the plan's, within the warm-up, the kept last step and the run limit; a rerun replaces its row."""
    run_mask_search(tmp_path, "--budget", "12", "--restarts", "1")
    run_mask_search(tmp_path, "--budget", "6", "--max-run", "1")
    with open(tmp_path / "mask_search.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    row = rows[0]
    mask = row["best_mask"]
    assert len(mask) == 12 and mask.count("□") == 12 - 8
    assert mask[:4] == "■■■■" and mask[-1] == "■" and "□□" not in mask  # warm-up 4, last kept, --max-run 1
    assert 0 < float(row["plan"]) <= float(row["best"]) < 100 and float(row["fewer_steps"]) < 100
    assert int(row["runs"]) <= 6
    assert f"`{mask}`" in (tmp_path / "mask_search.md").read_text()
