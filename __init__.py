"""AdaptiveDiffusion for ComfyUI: faster sampling by skipping redundant model evaluations.

GPL-3.0-or-later. The method lives in adaptive_core/ (no ComfyUI imports), the host glue in
nodes/, the browser side in js/.
"""
WEB_DIRECTORY = "./js"

# ComfyUI imports this folder as a package. pytest also imports this file while collecting the tests
# beside it, as a plain module when the checkout's folder name is no Python name (e.g. a dash in it):
# then there is no package to import the nodes from, and nothing here is needed.
if __package__:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
