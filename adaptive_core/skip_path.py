"""Saved skip paths: a trace written as JSON, read back as a mask to replay (type SKIP_PATH).

File format: the trace's to_dict() plus {"format": FORMAT, "format_version": 1}. Reading checks
everything before any sampling: size, JSON, format and version, and that every step says
"computed": true/false. The step count is checked against the run by `check_length`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .trace import AdaptiveTrace

FORMAT = "adaptive-diffusion-skip-path"
FORMAT_VERSION = 1
MAX_BYTES = 1_000_000  # a 10 000-step trace is ~1 MB; anything larger is not a skip path
HEAD_BYTES = 4096      # skip_path_json writes "format" first: a listing reads only this much


class SkipPathError(ValueError):
    """A skip-path file or value that cannot be used; the message says why."""


@dataclass(frozen=True)
class SkipPath:
    skip: tuple[bool, ...]  # True = step k is skipped
    source: str = ""

    @property
    def total_steps(self) -> int:
        return len(self.skip)

    def check_length(self, steps: int) -> None:
        if steps != self.total_steps:
            raise SkipPathError(f"skip_path {self.source or ''} has {self.total_steps} steps but this "
                                f"sampler runs {steps}: use a path saved from a run with the same steps")

    def mask_text(self) -> str:
        return "".join("□" if s else "■" for s in self.skip)


def skip_path_json(trace: AdaptiveTrace) -> str:
    return json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, **trace.to_dict()}, indent=1)


def looks_like_skip_path(head: bytes) -> bool:
    """Whether a file's first HEAD_BYTES name it a skip path (for listings: cheap, not a validation)."""
    return f'"{FORMAT}"'.encode() in head[:HEAD_BYTES]


def parse_skip_path(raw: bytes | str, source: str = "") -> SkipPath:
    """Validate and read a saved skip path; raises SkipPathError naming the problem."""
    if len(raw) > MAX_BYTES:
        raise SkipPathError(f"{source}: {len(raw)} bytes is too large for a skip path (limit {MAX_BYTES})")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise SkipPathError(f"{source}: not a JSON skip path ({error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SkipPathError(f"{source}: not a skip path (expected \"format\": \"{FORMAT}\")")
    if data.get("format_version") != FORMAT_VERSION:
        raise SkipPathError(f"{source}: format_version {data.get('format_version')!r} is not supported "
                            f"(this version reads {FORMAT_VERSION})")
    flags = _skip_flags(data.get("steps"), source)
    if data.get("total_steps", len(flags)) != len(flags):
        raise SkipPathError(f"{source}: total_steps {data.get('total_steps')!r} does not match its "
                            f"{len(flags)} steps")
    return SkipPath(tuple(flags), source)


def _skip_flags(steps: Any, source: str) -> list[bool]:
    if not isinstance(steps, list) or not steps:
        raise SkipPathError(f"{source}: \"steps\" must be a non-empty list")
    flags = []
    for index, step in enumerate(steps):
        computed = step.get("computed") if isinstance(step, dict) else None
        if not isinstance(computed, bool):
            raise SkipPathError(f"{source}: step {index} has no boolean \"computed\" (got {computed!r})")
        flags.append(not computed)
    return flags
