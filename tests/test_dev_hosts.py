"""scripts/dev.py's host matrix: which ComfyUI a command tests, and what it says when one is missing."""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def no_newest(dev, monkeypatch, tmp_path):
    """dev.py with no newest-host source anywhere."""
    monkeypatch.delenv("COMFYUI_DIR", raising=False)
    monkeypatch.delenv("COMFYUI_ARCHIVE", raising=False)
    monkeypatch.setattr(dev, "REPO", tmp_path / "checkout")  # no ../shared/hosts beside it
    return dev


def test_without_host_flag_the_newest_is_used_when_its_source_is_found(dev, monkeypatch, capsys):
    monkeypatch.delenv("COMFYUI_DIR", raising=False)
    monkeypatch.setattr(dev, "newest_archive", lambda: Path("/somewhere/comfyui.tar.gz"))
    assert dev.pick_hosts(None) == [dev.NEWEST]
    assert "newest host" in capsys.readouterr().out


def test_without_host_flag_and_no_newest_source_the_oldest_is_used_and_said(no_newest, capsys):
    assert no_newest.pick_hosts(None) == [no_newest.OLDEST]
    said = capsys.readouterr().out
    assert "0.3.75" in said and "COMFYUI_ARCHIVE" in said and "COMFYUI_DIR" in said


@pytest.mark.parametrize("choice", ["newest", "all"])
def test_an_explicit_newest_without_its_source_fails_and_says_how_to_add_it(no_newest, choice, capsys):
    assert no_newest.main(["test", "--host", choice]) == 2
    message = capsys.readouterr().err
    assert "cannot be built" in message and "COMFYUI_ARCHIVE" in message
    assert no_newest.commands == []  # nothing was built or run, the old host least of all


def test_host_flag_values(dev):
    assert dev.split_host_flag(["--host", "all", "-k", "x"]) == ("all", ["-k", "x"])
    assert dev.split_host_flag(["--host=oldest", "tests"]) == ("oldest", ["tests"])
    assert dev.split_host_flag(["tests/test_x.py"]) == (None, ["tests/test_x.py"])
    with pytest.raises(SystemExit, match="newest, oldest or all"):
        dev.split_host_flag(["--host", "latest"])
    assert dev.pick_hosts("all") == [dev.NEWEST, dev.OLDEST]


def test_a_user_checkout_in_comfyui_dir_is_the_newest_host_used_in_place(dev, monkeypatch, tmp_path):
    (tmp_path / "main.py").write_text("")
    monkeypatch.setenv("COMFYUI_DIR", str(tmp_path))
    dev.check_newest_source()
    assert dev.comfyui_dir(dev.NEWEST) == tmp_path.resolve()
    assert dev.comfyui_dir(dev.OLDEST) != tmp_path.resolve()  # the oldest host keeps its own
    monkeypatch.setenv("COMFYUI_DIR", str(tmp_path / "nothing"))
    with pytest.raises(dev.HostUnavailable, match="no main.py"):
        dev.check_newest_source()


def test_each_host_is_keyed_by_its_own_locks(dev):
    assert dev.NEWEST.folder() != dev.OLDEST.folder()
    assert {lock.name for lock in dev.NEWEST.locks} == {"host-newest.lock", "test.lock"}
    for host in (dev.NEWEST, dev.OLDEST):
        for lock in host.locks:  # every line pins exactly (comfyui.lock pins by hash)
            for line in lock.read_text().splitlines():
                if line.strip() and not line.startswith("#"):
                    assert "==" in line, f"{lock.name}: {line}"
    torch = [line for line in dev.NEWEST.locks[0].read_text().splitlines() if line.startswith("torch")]
    assert sorted(torch) == ["torch==2.11.0", "torchaudio==2.11.0", "torchsde==0.2.6", "torchvision==0.26.0"]


def test_archive_extraction_checks_the_known_archive_and_finds_comfyui(dev, tmp_path):
    source = tmp_path / "src" / "ComfyUI"
    source.mkdir(parents=True)
    (source / "main.py").write_text("# ComfyUI\n")
    archive = tmp_path / "mine.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="ComfyUI")
    dev.extract_archive(archive, tmp_path / "out")
    assert (tmp_path / "out" / "main.py").read_text() == "# ComfyUI\n"
    forged = tmp_path / dev.NEWEST_ARCHIVE_NAME  # the known name with other content
    forged.write_bytes(archive.read_bytes())
    with pytest.raises(dev.HostUnavailable, match="sha256"):
        dev.extract_archive(forged, tmp_path / "out2")


def test_the_running_host_is_the_one_dev_py_announced():
    """COMFYUI_DIR and ADAPTIVE_HOST_NAME agree with the ComfyUI imported by these tests."""
    import comfyui_version
    version = comfyui_version.__version__
    expected = {"newest": "0.33.0", "oldest": "0.3.75"}.get(os.environ.get("ADAPTIVE_HOST_NAME", ""))
    if expected is not None:
        assert version == expected


def test_ci_runs_both_hosts_with_the_readme_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert "python3 scripts/dev.py test --host all" in ci
    assert "python3 scripts/dev.py test --host all" in (REPO / "README.md").read_text()


def test_dev_py_without_arguments_prints_its_usage():
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "dev.py")], capture_output=True, text=True)
    assert proc.returncode == 2 and "--host newest|oldest|all" in proc.stdout
