"""Test host: the real ComfyUI from $COMFYUI_DIR (built by `python3 scripts/dev.py test`).

In-process tests load this pack and the fixture pack through ComfyUI's own custom-node loader,
from a custom_nodes folder laid out as a user would have it.
"""
from __future__ import annotations

import asyncio
import contextlib
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
sys.path.insert(0, COMFYUI_DIR)
sys.path.append(str(REPO))  # last, so ComfyUI's own `nodes` module wins over our nodes/ package
sys.path.append(str(REPO / "tests"))

import comfy.options  # noqa: E402

comfy.options.enable_args_parsing(False)
import comfy.cli_args  # noqa: E402

comfy.cli_args.args.cpu = True
# As main.py does: ComfyUI's utils/ package must be imported before nodes.py puts comfy/ (which
# has a utils.py) at the front of sys.path.
import utils.extra_config  # noqa: E402,F401
import utils.install_util  # noqa: E402,F401

from devtools.comfy_server import PACK_NAME, make_custom_nodes_dir  # noqa: E402


@pytest.fixture(scope="session")
def comfy(tmp_path_factory):
    """ComfyUI imported in this process with the built-in extra nodes, our pack and the fixtures."""
    import torch

    import nodes

    torch.set_num_threads(2)
    custom_nodes = make_custom_nodes_dir(tmp_path_factory.mktemp("host"))
    asyncio.run(nodes.init_builtin_extra_nodes())
    for name in (PACK_NAME, "adaptive_test_fixtures"):
        assert asyncio.run(nodes.load_custom_node(str(custom_nodes / name))), f"{name} failed to load"
    # The pack as ComfyUI loaded it (module names are the host's business): use its classes.
    nodes_package = nodes.NODE_CLASS_MAPPINGS["AdaptiveKSampler"].__module__.rsplit(".", 1)[0]
    hooks = sys.modules[nodes_package + ".hooks"]
    return SimpleNamespace(nodes=nodes, mappings=nodes.NODE_CLASS_MAPPINGS, hooks=hooks,
                           apply=hooks.apply_adaptive_diffusion, Config=hooks.AdaptiveConfig)


def run_node(comfy, node_type: str, **inputs):
    """Call a node as the executor would and return its outputs (the `result` tuple)."""
    cls = comfy.mappings[node_type]
    out = getattr(cls(), cls.FUNCTION)(**inputs)
    return out["result"] if isinstance(out, dict) else out


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
