"""The browser tests' own setup: `scripts/dev.py test` installs chromium, and a missing chromium
makes the browser tests fail (never skip)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def dev(monkeypatch):
    """scripts/dev.py as a module, with every command it would run recorded instead."""
    spec = importlib.util.spec_from_file_location("adaptive_dev_script", REPO / "scripts" / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.commands = []
    monkeypatch.setattr(module, "run", lambda cmd, **kw: module.commands.append(list(cmd)))
    return module


def test_dev_test_installs_debian_chromium_when_missing(dev, monkeypatch, tmp_path):
    monkeypatch.setattr(dev, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setattr(dev.shutil, "which", lambda name: f"/usr/bin/{name}")
    dev.ensure_chromium()
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    assert dev.commands == [sudo + ["apt-get", "update"],
                            sudo + ["apt-get", "install", "-y", "--no-install-recommends",
                                    "chromium", "chromium-driver"]]


def test_dev_test_leaves_an_installed_chromium_alone(dev, monkeypatch, tmp_path):
    present = tmp_path / "chromium"
    present.write_text("")
    monkeypatch.setattr(dev, "CHROMIUM", present)
    dev.ensure_chromium()
    assert dev.commands == []


def test_dev_test_installs_chromium_before_running_pytest(dev, monkeypatch, tmp_path):
    order = []
    monkeypatch.setattr(dev, "ensure_host", lambda: tmp_path)
    monkeypatch.setattr(dev, "ensure_chromium", lambda: order.append("chromium"))
    monkeypatch.setattr(dev.subprocess, "run", lambda cmd, **kw: order.append(cmd[1:3])
                        or subprocess.CompletedProcess(cmd, 0))
    assert dev.cmd_test(["tests/test_x.py"]) == 0
    assert order == ["chromium", ["-m", "pytest"]]


def test_a_missing_chromium_fails_the_browser_tests_instead_of_skipping(tmp_path):
    env = {**os.environ, "ADAPTIVE_CHROMIUM": str(tmp_path / "no-chromium")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "--no-header",
         "tests/test_live_mask_browser.py::test_live_strip_shows_the_mask_of_the_trace_in_history"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "ChromiumMissing" in output and "1 error" in output, output
    assert "skipped" not in output.lower(), output
