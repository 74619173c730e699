"""Save Skip Path / Load Skip Path: keep a run's skip mask as JSON and replay it later.

Load lists the skip paths in ComfyUI's input folder ("name.json") and output folder ("name.json
[output]", the host's annotated-name convention, as core LoadImage reads it), each at the top level
and one subfolder deep: Save's default prefix writes output/adaptive/, so a saved path is listed
without copying it anywhere. Only files whose head names the skip-path format are listed, and a
folder is only read again when it changed (the list is rebuilt on every /object_info).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import folder_paths

from ..adaptive_core import SkipPath, SkipPathError, parse_skip_path, skip_path_json
from ..adaptive_core.skip_path import HEAD_BYTES, MAX_BYTES, looks_like_skip_path
from .sampler_nodes import CATEGORY, TRACE_TYPE

SKIP_PATH_TYPE = "SKIP_PATH"


class AdaptiveSkipPathSave:
    DESCRIPTION = ("Writes a run's skip path (its trace as JSON) to ComfyUI's output folder. Load Skip "
                   "Path lists it as \"<subfolder>/<name>.json [output]\" to replay it.")
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
        name = output_name(subfolder, filename)
        return {"ui": {"skip_paths": [saved], "text": [f"{name}: {trace.mask_text()}"]}}


def output_name(subfolder: str, filename: str) -> str:
    """The name Load Skip Path lists a file of the output folder under."""
    return f"{Path(subfolder, filename).as_posix()} [output]"


class _SkipPathListing:
    """The skip-path files of a folder, its top level and one subfolder deep.

    Each directory is scanned again only when its mtime changes (a file added, removed or renamed
    in it), and each .json file's head is read again only when its mtime or size changes.
    """

    def __init__(self):
        self._folders: dict[str, tuple[int, list[str], list[str]]] = {}  # path → (mtime, .json names, subfolders)
        self._heads: dict[str, tuple[int, int, bool]] = {}              # path → (mtime, size, is a skip path)
        self._lock = threading.Lock()  # /object_info may be served while a prompt validates

    def names(self, root: Path) -> list[str]:
        found = []
        with self._lock:
            json_names, subfolders = self._scan(root)
            found += [name for name in json_names if self._is_skip_path(root / name)]
            for sub in subfolders:
                json_names, _ = self._scan(root / sub)
                found += [f"{sub}/{name}" for name in json_names if self._is_skip_path(root / sub / name)]
        return sorted(found)

    def _scan(self, folder: Path) -> tuple[list[str], list[str]]:
        try:
            mtime = folder.stat().st_mtime_ns
        except OSError:
            return [], []
        cached = self._folders.get(str(folder))
        if cached and cached[0] == mtime:
            return cached[1], cached[2]
        json_names, subfolders = [], []
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    subfolders.append(entry.name)
                elif entry.name.lower().endswith(".json") and entry.is_file():
                    json_names.append(entry.name)
        self._folders[str(folder)] = (mtime, json_names, subfolders)
        return json_names, subfolders

    def _is_skip_path(self, file: Path) -> bool:
        try:
            stat = file.stat()
        except OSError:
            return False
        cached = self._heads.get(str(file))
        if cached and cached[:2] == (stat.st_mtime_ns, stat.st_size):
            return cached[2]
        is_skip_path = stat.st_size <= MAX_BYTES and looks_like_skip_path(read_head(file))
        self._heads[str(file)] = (stat.st_mtime_ns, stat.st_size, is_skip_path)
        return is_skip_path


def read_head(file: Path) -> bytes:
    try:
        with open(file, "rb") as handle:
            return handle.read(HEAD_BYTES)
    except OSError:
        return b""


_LISTING = _SkipPathListing()


def skip_path_names() -> list[str]:
    """Load Skip Path's choices: input-folder paths, then output-folder paths (annotated)."""
    inputs = _LISTING.names(Path(folder_paths.get_input_directory()))
    outputs = _LISTING.names(Path(folder_paths.get_output_directory()))
    return inputs + [f"{name} [output]" for name in outputs]


class AdaptiveSkipPathLoad:
    DESCRIPTION = ("Reads a saved skip path from the input folder, or from the output folder where Save "
                   "Skip Path wrote it (listed with \"[output]\"). Connected to an Adaptive sampler or the "
                   "model patch, the run follows this mask instead of the criterion.")
    RETURN_TYPES = (SKIP_PATH_TYPE,)
    OUTPUT_TOOLTIPS = ("The mask to follow: connect to skip_path of an Adaptive node.",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"path": (skip_path_names(), {
            "tooltip": "A skip path written by Save Skip Path: in the output folder (\"[output]\") or "
                       "copied to the input folder."})}}

    @classmethod
    def VALIDATE_INPUTS(cls, path):
        try:
            read_skip_path(path)
        except SkipPathError as error:
            return str(error)
        return True

    @classmethod
    def IS_CHANGED(cls, path):
        try:
            file, _ = resolve_skip_path(path)
        except SkipPathError:
            return float("nan")  # VALIDATE_INPUTS reports the problem
        return file.stat().st_mtime if file.exists() else float("nan")

    def load(self, path):
        return (read_skip_path(path),)


def resolve_skip_path(name: str) -> tuple[Path, str]:
    """The file a listed name means, and its folder's name: "x.json" in the input folder,
    "x.json [output]" in the output folder (also "[input]", "[temp]": ComfyUI's annotated names).
    Never a file outside that folder."""
    relative, base = folder_paths.annotated_filepath(name)
    folder = "input" if base is None else name[name.rindex("[") + 1:-1]
    root = Path(base or folder_paths.get_input_directory()).resolve()
    file = (root / relative).resolve()
    if root not in file.parents:
        raise SkipPathError(f"skip path {name!r} is outside the {folder} folder")
    return file, folder


def read_skip_path(name: str) -> SkipPath:
    file, folder = resolve_skip_path(name)
    if not file.is_file():
        raise SkipPathError(f"skip path file {name!r} not found in the {folder} folder")
    with open(file, "rb") as handle:
        raw = handle.read(MAX_BYTES + 1)  # enough to tell a too-large file without reading it all
    return parse_skip_path(raw, source=name)
