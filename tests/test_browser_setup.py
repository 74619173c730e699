"""The browser tests' own setup: `scripts/dev.py test` installs chromium, and a missing chromium
makes the browser tests fail (never skip)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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
    monkeypatch.setattr(dev, "ensure_host", lambda host: tmp_path)
    monkeypatch.setattr(dev, "ensure_chromium", lambda: order.append("chromium"))
    monkeypatch.setattr(dev, "junit_counts", lambda report: {"tests": 1, "failures": 0, "errors": 0, "skipped": 0})
    monkeypatch.setattr(dev.subprocess, "run", lambda cmd, **kw: order.append(cmd[1:3])
                        or subprocess.CompletedProcess(cmd, 0))
    assert dev.cmd_test("oldest", ["tests/test_x.py"]) == 0
    assert order == ["chromium", ["-m", "pytest"]]


def test_a_missing_chromium_fails_the_browser_tests_instead_of_skipping(monkeypatch, tmp_path):
    """The browser fixture raises ChromiumMissing (an error, not a skip) when chromium is absent."""
    import devtools.browser as browser
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(browser.ChromiumMissing, match="chromium"):
        with browser.chromium_context():
            pass
    source = (REPO / "tests" / "test_live_mask_browser.py").read_text() + (REPO / "devtools" / "browser.py").read_text()
    assert "pytest.skip" not in source and "importorskip" not in source
