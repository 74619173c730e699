"""Save Skip Path / Load Skip Path: keep a run's skip mask as JSON and replay it later."""
from __future__ import annotations

import os
from pathlib import Path

import folder_paths

from ..adaptive_core import SkipPath, SkipPathError, parse_skip_path, skip_path_json
from ..adaptive_core.skip_path import MAX_BYTES
from .sampler_nodes import CATEGORY, TRACE_TYPE

SKIP_PATH_TYPE = "SKIP_PATH"


class AdaptiveSkipPathSave:
    DESCRIPTION = ("Writes a run's skip path (its trace as JSON) to ComfyUI's output folder. Copy it "
                   "to the input folder to replay it with Load Skip Path.")
    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "trace": (TRACE_TYPE, {"tooltip": "The trace output of an Adaptive KSampler."}),
            "filename_prefix": ("STRING", {"default": "adaptive/skip_path",
                                           "tooltip": "File name prefix inside the output folder."}),
        }}

    def save(self, trace, filename_prefix):
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, folder_paths.get_output_directory())
        filename = f"{name}_{counter:05}_.json"
        target = Path(folder) / filename
        temporary = target.with_suffix(".json.tmp")
        temporary.write_text(skip_path_json(trace))
        os.replace(temporary, target)  # never a half-written file under the final name
        saved = {"filename": filename, "subfolder": subfolder, "type": "output"}
        return {"ui": {"skip_paths": [saved], "text": [f"{subfolder}/{filename}: {trace.mask_text()}"]}}


def _input_json_files() -> list[str]:
    root = Path(folder_paths.get_input_directory())
    if not root.is_dir():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.json") if p.is_file())


class AdaptiveSkipPathLoad:
    DESCRIPTION = ("Reads a saved skip path from the input folder. Connected to an Adaptive sampler "
                   "or the model patch, the run follows this mask instead of the criterion.")
    RETURN_TYPES = (SKIP_PATH_TYPE,)
    OUTPUT_TOOLTIPS = ("The mask to follow: connect to skip_path of an Adaptive node.",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"path": (_input_json_files(), {
            "tooltip": "A .json file in ComfyUI's input folder written by Save Skip Path."})}}

    @classmethod
    def VALIDATE_INPUTS(cls, path):
        try:
            read_skip_path(path)
        except SkipPathError as error:
            return str(error)
        return True

    @classmethod
    def IS_CHANGED(cls, path):
        file = _input_path(path)
        return file.stat().st_mtime if file.exists() else float("nan")

    def load(self, path):
        return (read_skip_path(path),)


def _input_path(relative: str) -> Path:
    root = Path(folder_paths.get_input_directory()).resolve()
    file = (root / relative).resolve()
    if root not in file.parents:
        raise SkipPathError(f"skip path {relative!r} is outside the input folder")
    return file


def read_skip_path(relative: str) -> SkipPath:
    file = _input_path(relative)
    if not file.is_file():
        raise SkipPathError(f"skip path file {relative!r} not found in the input folder")
    with open(file, "rb") as handle:
        raw = handle.read(MAX_BYTES + 1)  # enough to tell a too-large file without reading it all
    return parse_skip_path(raw, source=relative)
