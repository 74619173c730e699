"""bench/peers.py's core path on a tiny grid: the real ComfyUI in a child process, the trained digits
model, fewer steps and the pack, no peers folder (each missing peer is named), resumable CSV, report;
the model column (eps/flow), the report's part per model, and which peer runs which sampler (in process,
no sampling)."""
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
    assert {r["model"] for r in rows} == {"eps"}  # the default model
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


# ---- The model column and the report per model (in process, from CSV rows; no sampling).

def csv_row(model: str | None, steps: int, sampler: str, method: str, setting: str, calls: float, psnr: float,
            impl: str = "comfy", scheduler: str = "simple") -> dict:
    row = {"steps": steps, "sampler": sampler, "scheduler": scheduler, "method": method, "setting": setting,
           "prompts": 2, "impl": impl, "decides": "batch", "full_calls": float(steps), "model_calls": calls,
           "psnr": psnr, "ssim": 0.9, "psnr_own": psnr, "ssim_own": 0.9, "seconds_per_image": 0.01}
    return row if model is None else {"model": model, **row}


def config_rows(model: str | None, steps: int, sampler: str, scheduler: str, base: float) -> list[dict]:
    """A reference, two fewer-steps rows, the default speed and a FSampler row."""
    return [csv_row(model, steps, sampler, "full", f"{steps} steps (reference)", steps, 100.0, scheduler=scheduler),
            csv_row(model, steps, sampler, "fewer", "4 steps", 4, base, scheduler=scheduler),
            csv_row(model, steps, sampler, "fewer", "8 steps", 8, base + 10, scheduler=scheduler),
            csv_row(model, steps, sampler, "speed_quadratic", "speed 2x quadratic", 5, base + 20, scheduler=scheduler),
            csv_row(model, steps, sampler, "fsampler", "h2/s2", 7, base + 5, "fsampler", scheduler)]


def test_key_of_tells_the_models_apart_and_reads_a_row_without_one_as_eps():
    from bench.peers import key_of
    eps, flow = csv_row("eps", 20, "euler", "fewer", "8 steps", 8, 30.0), csv_row("flow", 20, "euler", "fewer", "8 steps", 8, 30.0)
    old = csv_row(None, 20, "euler", "fewer", "8 steps", 8, 30.0)
    assert key_of(eps) != key_of(flow)
    assert key_of(old) == key_of(eps) and key_of({**old, "model": ""}) == key_of(eps)
    assert key_of(flow)[0] == "flow"


def test_old_csv_is_migrated_to_eps_and_the_report_has_a_part_and_plots_per_model(tmp_path):
    from bench.peers import append_row
    from bench.peers_report import CSV_FIELDS, FAILURE_FIELDS, FAILURES, migrate, read_rows, write_report
    path = tmp_path / "peers_results.csv"
    old_fields = [f for f in CSV_FIELDS if f != "model"]
    with open(path, "w", newline="") as handle:  # a file from before the model column
        writer = csv.DictWriter(handle, fieldnames=old_fields)
        writer.writeheader()
        writer.writerows(config_rows(None, 10, "euler", "normal", 20.0))
    assert [r["model"] for r in read_rows(path)] == ["eps"] * 5  # read as ε rows before migrating too
    assert migrate(path) and not migrate(path)  # once
    with open(path) as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == CSV_FIELDS and {r["model"] for r in reader} == {"eps"}
    for row in config_rows("flow", 12, "uni_pc", "simple", 25.0) + config_rows("flow", 12, "euler_ancestral", "simple", 15.0):
        append_row(path, row)
    append_row(tmp_path / FAILURES, {"model": "flow", "steps": 12, "sampler": "euler_ancestral", "scheduler": "simple",
                                     "method": "zeus", "setting": "d2 m1 steps 3..9", "error": "RuntimeError: boom"},
               FAILURE_FIELDS)
    write_report(path, tmp_path)

    text = (tmp_path / "peers_summary.md").read_text()
    eps_part, flow_part = text.split("# ε-prediction model")[1].split("# flow-matching model")
    assert "| 10 | euler | normal | 4.0 (40%) |" in eps_part and "uni_pc" not in eps_part
    assert "| 12 | uni_pc | simple | 4.8 (40%) |" in flow_part and "| 10 | euler | normal" not in flow_part
    # the default at its own calls (5 of 12): fewer steps interpolated there, FSampler has no row ≤ 7 calls below
    assert "| 12 | uni_pc | simple | 5.0 / 12 | 45.0 dB | 27.5 dB |" in flow_part
    # stochastic sampler: its own part, the peers that do not run it named, the failure quoted
    assert "### euler_ancestral / simple, 12 steps" in flow_part and "SADA: no rows (not run)" in flow_part
    assert "ZEUS: failed (RuntimeError: boom)" in flow_part and "`RuntimeError: boom`" in flow_part
    assert "Samplers that add noise every step" not in eps_part
    assert (tmp_path / "peers_10.png").exists() and (tmp_path / "peers_flow_12.png").exists()
    assert not (tmp_path / "peers_12.png").exists() and not (tmp_path / "peers_flow_10.png").exists()


def test_peers_run_only_the_samplers_their_code_offers():
    """settings_for on a stand-in Bench (settings only build closures): a peer's rows on the samplers
    its code has, none elsewhere; FSampler's euler_ancestral is its euler with add_noise 1.0."""
    from bench.peers import settings_for
    from bench.peers_report import runs
    calls = []

    class Stub:
        model = object()

        def call(self, node, **inputs):
            calls.append((node, inputs))
            return (object(), object())

        def sample_custom(self, *args, **kwargs):
            return None

    loaded = {"ComfyUI-FSampler", "ComfyUI-AccelDiff", "ComfyUI-Spectrum-sdxl"}
    methods = {s: {x.method for x in settings_for(Stub(), 20, s, "simple", 3.0, loaded)}
               for s in ("euler", "uni_pc", "res_multistep", "euler_ancestral")}
    peers = {"fsampler", "zeus", "sada", "acceldiff_adaptive", "spectrum", "easycache", "lazycache"}
    assert peers <= methods["euler"] and peers <= methods["euler_ancestral"]
    assert peers & methods["uni_pc"] == {"spectrum", "easycache", "lazycache"}
    assert peers & methods["res_multistep"] == peers - {"sada"}  # SADA's node would run euler instead
    assert not runs("sada", "res_multistep") and not runs("fsampler", "uni_pc") and runs("spectrum", "anything")
    fsampler = next(s for s in settings_for(Stub(), 20, "euler_ancestral", "simple", 3.0, loaded)
                    if s.method == "fsampler" and s.label == "h2/s2")
    fsampler.run([])
    node, inputs = next(c for c in calls if c[0] == "FSamplerSelect")
    assert inputs["sampler"] == "euler" and inputs["add_noise"] == 1.0 and inputs["skip_mode"] == "h2/s2"
