"""Import the real ComfyUI from $COMFYUI_DIR into this process, the way main.py prepares it."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def boot_comfyui(cpu: bool = True) -> str:
    """Put ComfyUI on sys.path (first) and set its CLI defaults; returns the ComfyUI folder."""
    comfyui_dir = os.environ.get("COMFYUI_DIR")
    if not comfyui_dir or not Path(comfyui_dir, "main.py").exists():
        raise RuntimeError("COMFYUI_DIR does not point at ComfyUI: run through `python3 scripts/dev.py`")
    if comfyui_dir not in sys.path:
        sys.path.insert(0, comfyui_dir)
    import comfy.options
    comfy.options.enable_args_parsing(False)
    import comfy.cli_args
    comfy.cli_args.args.cpu = cpu
    # ComfyUI's utils/ package must be imported before nodes.py puts comfy/ (which has a
    # utils.py) at the front of sys.path, as main.py does.
    import utils.extra_config  # noqa: F401
    import utils.install_util  # noqa: F401
    return comfyui_dir


def load_packs(custom_nodes: Path, names: list[str]) -> dict:
    """Load ComfyUI's built-in extra nodes and the named folders of `custom_nodes` with the host's
    own loader; returns NODE_CLASS_MAPPINGS."""
    import asyncio

    import nodes
    asyncio.run(nodes.init_builtin_extra_nodes())
    for name in names:
        if not asyncio.run(nodes.load_custom_node(str(custom_nodes / name))):
            raise RuntimeError(f"custom node folder {name} failed to load")
    return nodes.NODE_CLASS_MAPPINGS


def call_node(mappings: dict, node_type: str, **inputs):
    """Call a node as the executor would and return its outputs (V1 and V3 nodes alike)."""
    cls = mappings[node_type]
    if hasattr(cls, "execute") and hasattr(cls, "define_schema"):  # V3 node
        return tuple(cls.execute(**inputs).result)
    out = getattr(cls(), cls.FUNCTION)(**inputs)
    return out["result"] if isinstance(out, dict) else out


def loaded_pack_hooks():
    """The pack's nodes/hooks.py module as the host loaded it (its module name is the host's)."""
    import nodes
    package = nodes.NODE_CLASS_MAPPINGS["AdaptiveKSampler"].__module__.rsplit(".", 1)[0]
    return sys.modules[package + ".hooks"]
