"""AdaptiveDiffusion for ComfyUI: faster sampling by skipping redundant model evaluations.

GPL-3.0-or-later. The method lives in adaptive_core/ (no ComfyUI imports), the host glue in
nodes/, the browser side in js/.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./js"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
