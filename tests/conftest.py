"""Test host: the real ComfyUI from $COMFYUI_DIR (built by `python3 scripts/dev.py test`).

In-process tests load this pack and the fixture pack through ComfyUI's own custom-node loader,
from a custom_nodes folder laid out as a user would have it.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parent.parent

COMFYUI_DIR = os.environ.get("COMFYUI_DIR")
if not COMFYUI_DIR or not Path(COMFYUI_DIR, "main.py").exists():
    raise pytest.UsageError("COMFYUI_DIR is not set to a ComfyUI checkout: run the tests with "
                            "`python3 scripts/dev.py test`, which builds the pinned host")
sys.path.append(str(REPO))  # last, so ComfyUI's own `nodes` module wins over our nodes/ package
sys.path.append(str(REPO / "tests"))

from devtools.inprocess import boot_comfyui, call_node, load_packs, loaded_pack_hooks  # noqa: E402

boot_comfyui()
# ComfyUI's nodes.py, imported now: when the checkout's folder name is no Python name (a dash in
# it), pytest later puts the checkout itself first on sys.path while collecting its __init__.py,
# and a plain `import nodes` would then find this pack's nodes/ package instead.
import nodes  # noqa: E402,F401

from devtools.comfy_server import PACK_FOLDERS, make_custom_nodes_dir  # noqa: E402


@pytest.fixture(scope="session")
def comfy(tmp_path_factory):
    """ComfyUI imported in this process with the built-in extra nodes, our pack, the test fixture
    pack and the demo pack, loaded by the host's own loader."""
    import torch

    import nodes

    torch.set_num_threads(2)
    load_packs(make_custom_nodes_dir(tmp_path_factory.mktemp("host")), list(PACK_FOLDERS))
    hooks = loaded_pack_hooks()  # use the pack's classes as the host loaded them, not a copy
    return SimpleNamespace(nodes=nodes, mappings=nodes.NODE_CLASS_MAPPINGS, hooks=hooks,
                           apply=hooks.apply_adaptive_diffusion, Config=hooks.AdaptiveConfig)


def run_node(comfy, node_type: str, **inputs):
    """Call a node as the executor would and return its outputs (the `result` tuple)."""
    return call_node(comfy.mappings, node_type, **inputs)


@contextlib.contextmanager
def count_diffusion_calls(model_patcher):
    """Count forward calls of the real diffusion network (below every wrapper)."""
    counter = SimpleNamespace(calls=0, rows=0)

    def hook(module, args, kwargs):
        counter.calls += 1
        counter.rows += (args[0] if args else kwargs["x"]).shape[0]

    handle = model_patcher.model.diffusion_model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield counter
    finally:
        handle.remove()


@pytest.fixture
def dev(monkeypatch):
    """scripts/dev.py as a module, with every command it would run recorded instead."""
    spec = importlib.util.spec_from_file_location("adaptive_dev_script", REPO / "scripts" / "dev.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    module.commands = []
    monkeypatch.setattr(module, "run", lambda cmd, **kw: module.commands.append(list(cmd)))
    return module
