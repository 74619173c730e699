"""A real ComfyUI server on 127.0.0.1 for end-to-end tests: start, queue, wait, stop."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent
PACK_NAME = "ComfyUI-AdaptiveDiffusion"
FIXTURE_PACK = REPO / "tests" / "fixture_pack"


DIGITS_PACK = REPO / "reference" / "digits_pack"  # the trained reference model as a node pack
PACK_FOLDERS = {PACK_NAME: REPO, "adaptive_test_fixtures": FIXTURE_PACK, "adaptive_demo_digits": DIGITS_PACK}


def make_custom_nodes_dir(base: Path) -> Path:
    """A custom_nodes folder with this pack, the test fixture pack and the digits pack (symlinks)."""
    custom_nodes = base / "custom_nodes"
    custom_nodes.mkdir(parents=True, exist_ok=True)
    for name, target in PACK_FOLDERS.items():
        link = custom_nodes / name
        if not link.exists():
            link.symlink_to(target, target_is_directory=True)
    return custom_nodes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ComfyServer:
    def __init__(self, base_dir: Path, comfyui_dir: str):
        self.base_dir = base_dir
        self.comfyui_dir = comfyui_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base_dir / "server.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> "ComfyServer":
        make_custom_nodes_dir(self.base_dir)
        for folder in ("models", "input", "output", "temp", "user"):
            (self.base_dir / folder).mkdir(exist_ok=True)
        command = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
                   "--base-directory", str(self.base_dir), "--database-url", "sqlite:///:memory:",
                   "--disable-auto-launch", "--disable-api-nodes"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(command, cwd=self.comfyui_dir, stdout=self._log,
                                        stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited early:\n{self.log()[-4000:]}")
            try:
                self.get("/system_stats")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.3)
        raise TimeoutError(f"ComfyUI did not start in {timeout}s:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def post(self, path: str, data: dict) -> tuple[int, dict]:
        request = urllib.request.Request(self.url + path, data=json.dumps(data).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read()
                return response.status, (json.loads(body) if body else {})
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def queue(self, prompt: dict) -> str:
        status, body = self.post("/prompt", {"prompt": prompt, "client_id": "adaptive-tests"})
        if status != 200:
            raise AssertionError(f"prompt rejected ({status}): {json.dumps(body)[:2000]}")
        return body["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 120.0) -> dict:
        """The /history entry of a finished prompt."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = self.get(f"/history/{prompt_id}")
            if history and prompt_id in history:
                entry = history[prompt_id]
                if entry.get("status", {}).get("completed") or entry.get("status", {}).get("status_str") == "error":
                    return entry
            time.sleep(0.2)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout}s")

    def run(self, prompt: dict, timeout: float = 120.0) -> dict:
        entry = self.wait(self.queue(prompt), timeout)
        status = entry.get("status", {})
        if status.get("status_str") == "error":
            raise AssertionError(f"prompt failed: {json.dumps(status.get('messages'))[:3000]}")
        return entry["outputs"]


@contextlib.contextmanager
def running_server(base_dir: Path) -> Iterator[ComfyServer]:
    """A started server on the ComfyUI in $COMFYUI_DIR (what scripts/dev.py sets), always stopped."""
    server = ComfyServer(base_dir, os.environ["COMFYUI_DIR"]).start()
    try:
        yield server
    finally:
        server.stop()
