"""Packaging: the Comfy Registry's own validator accepts pyproject.toml, and the layout is a pack."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_comfy_cli_node_validate_passes():
    comfy = Path(sys.executable).with_name("comfy")
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    result = subprocess.run([str(comfy), "--skip-prompt", "--no-enable-telemetry", "node", "validate"],
                            cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validation checks passed" in result.stdout + result.stderr


def test_pyproject_declares_the_registry_fields():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["license"]["text"] == "GPL-3.0-or-later"
    # The same runtime requirements for the Registry and for ComfyUI-Manager's pip install.
    requirements = runtime_requirements()
    assert sorted(project["project"]["dependencies"]) == sorted(requirements)
    comfy = project["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"] and "requires-comfyui" in comfy
    assert project["project"]["urls"]["Repository"].startswith("https://")


def runtime_requirements() -> list[str]:
    return [line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def test_runtime_requirements_are_minimums_and_every_host_lock_satisfies_them():
    """ComfyUI-Manager installs requirements.txt into the user's shared environment: an exact pin
    would move their matplotlib. The test hosts keep exact versions in requirements/host*.lock."""
    from packaging.requirements import Requirement

    locks = sorted((REPO / "requirements").glob("host*.lock"))
    assert locks
    for lock_file in locks:
        lock = {}
        for line in lock_file.read_text().splitlines():
            if "==" in line and not line.startswith("#"):
                name, version = line.split("#")[0].strip().split("==")
                lock[name.lower()] = version
        for line in runtime_requirements():
            requirement = Requirement(line)
            assert requirement.specifier and all(spec.operator == ">=" for spec in requirement.specifier), line
            pinned = lock.get(requirement.name.lower())
            assert pinned, f"{requirement.name} is not pinned in {lock_file.name}"
            assert requirement.specifier.contains(pinned), (line, lock_file.name, pinned)


def test_pack_exports_what_comfyui_loads():
    text = (REPO / "__init__.py").read_text()
    for name in ("NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"):
        assert name in text
