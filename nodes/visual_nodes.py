"""Skip Mask Preview and Skip Stats: show which steps a run computed and which it skipped."""
from __future__ import annotations

import os
import uuid

from ..adaptive_core.display import stats_text
from .sampler_nodes import CATEGORY, TRACE_TYPE

TRACE_TOOLTIP = "The trace output of an Adaptive KSampler (which steps were computed or skipped)."
EXTRA_TRACES = ("trace_2", "trace_3", "trace_4")


def _trace_inputs() -> dict:
    required = {"trace": (TRACE_TYPE, {"tooltip": TRACE_TOOLTIP})}
    optional = {name: (TRACE_TYPE, {"tooltip": f"Another trace, drawn as row {index + 2} "
                                               "(e.g. the refiner of a base + refiner graph)."})
                for index, name in enumerate(EXTRA_TRACES)}
    optional["labels"] = ("STRING", {
        "default": "", "tooltip": "Row labels separated by commas, e.g. 'base, refiner'. Empty: "
                                  "the trace's own label, or run 1, run 2, ..."})
    return {"required": required, "optional": optional}


def save_temp_png(rgb, prefix: str = "AdaptiveSkipMask") -> dict:
    """Write an H x W x 3 uint8 picture to ComfyUI's temp folder; the ui entry that shows it."""
    import folder_paths
    from PIL import Image

    folder = folder_paths.get_temp_directory()
    os.makedirs(folder, exist_ok=True)
    filename = f"{prefix}_{uuid.uuid4().hex[:12]}.png"
    # compress_level 1 as PreviewImage does: a temp preview favours speed over size.
    Image.fromarray(rgb).save(os.path.join(folder, filename), compress_level=1)
    return {"filename": filename, "subfolder": "", "type": "temp"}


def to_image_tensor(rgb):
    """ComfyUI IMAGE: float32 in [0, 1], shape [1, H, W, 3]."""
    import torch
    return torch.from_numpy(rgb).float().div(255.0).unsqueeze(0)


class AdaptiveSkipMaskPreview:
    DESCRIPTION = ("Draws which steps were computed and which were skipped: one cell per step along "
                   "the σ schedule, the skip criterion against δ below it, and the run's totals. "
                   "Connect up to four traces (e.g. base + refiner) to compare them as rows.")
    RETURN_TYPES = ("IMAGE",)
    OUTPUT_TOOLTIPS = ("The skip-mask picture, also shown on the node.",)
    FUNCTION = "preview"
    OUTPUT_NODE = True
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return _trace_inputs()

    def preview(self, trace, trace_2=None, trace_3=None, trace_4=None, labels: str = "") -> dict:
        # Imported here so that a missing matplotlib only affects this node, not the samplers.
        from .mask_picture import render_mask_picture

        given = [t for t in (trace, trace_2, trace_3, trace_4) if t is not None]
        names = labels.split(",") if labels else []
        traces, row_names = [], []
        for index, run in enumerate(given):  # per-sample traces: one row per batch item
            items = run.per_item()
            traces += items
            name = names[index].strip() if index < len(names) else ""
            row_names += [f"{name} {item.label}".strip() if len(items) > 1 else name for item in items]
        if len(given) == 2 and len(traces) == 2:  # e.g. estimator vs oracle: say how far they agree
            row_names[1] = f"{row_names[1] or traces[1].label or 'run 2'} (agrees on {traces[0].agreement(traces[1]):.0%} of steps)"
        picture = render_mask_picture(traces, row_names)
        return {"ui": {"images": [save_temp_png(picture.rgb)]},
                "result": (to_image_tensor(picture.rgb),)}


class AdaptiveSkipStats:
    DESCRIPTION = ("The run's summary and its mask as text (■ computed, □ skipped), with model-call "
                   "counts and settings; shown on the node and given as a STRING.")
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("stats",)
    OUTPUT_TOOLTIPS = ("Summary, mask (■ computed, □ skipped), model calls, settings and notes.",)
    FUNCTION = "stats"
    OUTPUT_NODE = True
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"trace": (TRACE_TYPE, {"tooltip": TRACE_TOOLTIP})}}

    def stats(self, trace) -> dict:
        text = stats_text(trace)
        return {"ui": {"text": [text]}, "result": (text,)}
