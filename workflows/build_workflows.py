#!/usr/bin/env python3
"""Writes the example workflows in this folder (UI format, what the ComfyUI frontend saves and
loads by drag and drop). The JSON files are the product; this script keeps them consistent.

    python3 workflows/build_workflows.py          # rewrite the JSON files
    python3 workflows/build_workflows.py --check  # exit 1 if a file differs from what it would write

Deterministic (no clock, no randomness). Node types, input names and widget order are those of
ComfyUI 0.3.75; tests/test_workflows.py checks every file against a live server's /object_info
and loads it in the real frontend. Standard library only.
"""
from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

HERE = Path(__file__).resolve().parent
PYPROJECT = HERE.parent / "pyproject.toml"
HOST_VERSION = "0.3.75"  # the oldest ComfyUI these workflows are tested against
NEWEST_VERSION = "0.33.0"  # and the newest
UI_VERSION = 0.4
TRACE = "ADAPTIVE_TRACE"
OUR_NODES = {"AdaptiveKSampler", "AdaptiveKSamplerAdvanced", "AdaptiveDiffusionPatch",
             "AdaptiveSkipMaskPreview", "AdaptiveSkipStats"}
FRONTEND_ONLY = {"Note"}

# Sockets (inputs that are not widgets, in ComfyUI's order) and outputs of every node type used.
SAMPLER_SOCKETS = [("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                   ("latent_image", "LATENT")]
SHAPES: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {
    "Note": ([], []),
    "CheckpointLoaderSimple": ([], [("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")]),
    "UNETLoader": ([], [("MODEL", "MODEL")]),
    "CLIPLoader": ([], [("CLIP", "CLIP")]),
    "VAELoader": ([], [("VAE", "VAE")]),
    "CLIPVisionLoader": ([], [("CLIP_VISION", "CLIP_VISION")]),
    "LoadImage": ([], [("IMAGE", "IMAGE"), ("MASK", "MASK")]),
    "PrimitiveInt": ([], [("INT", "INT")]),
    "CLIPTextEncode": ([("clip", "CLIP")], [("CONDITIONING", "CONDITIONING")]),
    "CLIPVisionEncode": ([("clip_vision", "CLIP_VISION"), ("image", "IMAGE")],
                         [("CLIP_VISION_OUTPUT", "CLIP_VISION_OUTPUT")]),
    "EmptyLatentImage": ([], [("LATENT", "LATENT")]),
    "EmptyHunyuanLatentVideo": ([], [("LATENT", "LATENT")]),
    "WanImageToVideo": ([("positive", "CONDITIONING"), ("negative", "CONDITIONING"), ("vae", "VAE"),
                         ("clip_vision_output", "CLIP_VISION_OUTPUT"), ("start_image", "IMAGE")],
                        [("positive", "CONDITIONING"), ("negative", "CONDITIONING"), ("latent", "LATENT")]),
    "ModelSamplingSD3": ([("model", "MODEL")], [("MODEL", "MODEL")]),
    "KSampler": (SAMPLER_SOCKETS, [("LATENT", "LATENT")]),
    "AdaptiveKSampler": (SAMPLER_SOCKETS + [("skip_path", "SKIP_PATH")], [("LATENT", "LATENT"), ("trace", TRACE)]),
    "AdaptiveKSamplerAdvanced": (SAMPLER_SOCKETS + [("skip_path", "SKIP_PATH")],
                                 [("LATENT", "LATENT"), ("trace", TRACE)]),
    "AdaptiveSkipMaskPreview": ([("trace", TRACE), ("trace_2", TRACE), ("trace_3", TRACE), ("trace_4", TRACE)],
                                [("IMAGE", "IMAGE")]),
    "AdaptiveSkipStats": ([("trace", TRACE)], [("stats", "STRING")]),
    "VAEDecode": ([("samples", "LATENT"), ("vae", "VAE")], [("IMAGE", "IMAGE")]),
    "SaveImage": ([("images", "IMAGE")], []),
    "SaveAnimatedWEBP": ([("images", "IMAGE")], []),
}

# LiteGraph's node colour pairs (as the frontend's palette names them) and group colours.
GREEN = ("#232", "#353")
RED = ("#322", "#533")
YELLOW = ("#432", "#653")
BLUE = ("#223", "#335")
GROUP_BLUE, GROUP_GREEN, GROUP_BROWN, GROUP_PURPLE = "#3f789e", "#8A8", "#b58b2a", "#a1309b"
TITLE_HEIGHT = 30  # LiteGraph draws a node's title bar above node.pos
GROUP_TITLE = 50  # room for a group's title bar above its first node's title

# Model files: (name, ComfyUI model folder, download address).
HF = "https://huggingface.co"
WAN_REPACK = f"{HF}/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files"
SDXL_BASE = ("sd_xl_base_1.0.safetensors", "checkpoints",
             f"{HF}/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/sd_xl_base_1.0.safetensors")
SDXL_REFINER = ("sd_xl_refiner_1.0.safetensors", "checkpoints",
                f"{HF}/stabilityai/stable-diffusion-xl-refiner-1.0/resolve/main/sd_xl_refiner_1.0.safetensors")
WAN_T2V = ("wan2.1_t2v_1.3B_fp16.safetensors", "diffusion_models",
           f"{WAN_REPACK}/diffusion_models/wan2.1_t2v_1.3B_fp16.safetensors")
WAN_I2V = ("wan2.1_i2v_480p_14B_fp16.safetensors", "diffusion_models",
           f"{WAN_REPACK}/diffusion_models/wan2.1_i2v_480p_14B_fp16.safetensors")
UMT5 = ("umt5_xxl_fp8_e4m3fn_scaled.safetensors", "text_encoders",
        f"{WAN_REPACK}/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors")
WAN_VAE = ("wan_2.1_vae.safetensors", "vae", f"{WAN_REPACK}/vae/wan_2.1_vae.safetensors")
CLIP_VISION_H = ("clip_vision_h.safetensors", "clip_vision", f"{WAN_REPACK}/clip_vision/clip_vision_h.safetensors")
START_IMAGE = "example.png"  # ships in every ComfyUI's input/ folder

SEED = 20241122
ADAPTIVE_DEFAULTS = {"threshold": 0.01, "max_skip_steps": 4, "warmup_steps": 4, "keep_last_steps": 1,
                     "noise_reuse": "linear", "per_sample": False}


def pack_version() -> str:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"]


def pack_id() -> str:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["name"]


def adaptive_widgets(**overrides) -> list:
    settings = {**ADAPTIVE_DEFAULTS, **overrides}
    return [settings[name] for name in ADAPTIVE_DEFAULTS]


@dataclass
class Node:
    id: int
    type: str
    pos: tuple[float, float]
    size: tuple[float, float]
    widgets: list
    title: str | None = None
    colors: tuple[str, str] | None = None
    models: list[tuple[str, str, str]] = field(default_factory=list)
    inputs: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        sockets, outputs = SHAPES[self.type]
        self.inputs = [{"name": name, "type": kind, "link": None} for name, kind in sockets]
        self.outputs = [{"name": name, "type": kind, "links": []} for name, kind in outputs]

    def input_slot(self, name: str, kind: str) -> int:
        """The slot of a socket, or of the widget input `name` once it takes a link (appended after
        the sockets, as the frontend serializes a linked widget)."""
        for slot, entry in enumerate(self.inputs):
            if entry["name"] == name:
                return slot
        self.inputs.append({"name": name, "type": kind, "widget": {"name": name}, "link": None})
        return len(self.inputs) - 1

    def output_slot(self, name: str) -> int:
        return next(slot for slot, entry in enumerate(self.outputs) if entry["name"] == name)

    def properties(self, version: str, pack: str) -> dict:
        if self.type in FRONTEND_ONLY:
            return {"text": ""}
        properties = {"cnr_id": pack if self.type in OUR_NODES else "comfy-core",
                      "ver": version if self.type in OUR_NODES else HOST_VERSION,
                      "Node name for S&R": self.type}
        if self.models:
            properties["models"] = [{"name": name, "url": url, "directory": folder}
                                    for name, folder, url in self.models]
        return properties

    def to_json(self, order: int, version: str, pack: str) -> dict:
        data: dict[str, Any] = {"id": self.id, "type": self.type, "pos": list(self.pos), "size": list(self.size),
                                "flags": {}, "order": order, "mode": 0, "inputs": self.inputs,
                                "outputs": self.outputs}
        if self.title:
            data["title"] = self.title
        data["properties"] = self.properties(version, pack)
        data["widgets_values"] = self.widgets
        if self.colors:
            data["color"], data["bgcolor"] = self.colors
        return data


class Workflow:
    """Nodes, links and groups, written out in the frontend's UI format (version 0.4)."""

    def __init__(self, name: str):
        self.name = name
        self.nodes: list[Node] = []
        self.links: list[list] = []
        self.groups: list[dict] = []

    def add(self, node_type: str, pos: tuple[float, float], size: tuple[float, float], widgets: list | None = None,
            **extra) -> Node:
        node = Node(len(self.nodes) + 1, node_type, pos, size, list(widgets or []), **extra)
        self.nodes.append(node)
        return node

    def note(self, text: str, pos: tuple[float, float], size: tuple[float, float], title: str) -> Node:
        return self.add("Note", pos, size, [text], title=title, colors=YELLOW)

    def connect(self, origin: Node, output: str, target: Node, input_name: str) -> None:
        origin_slot = origin.output_slot(output)
        kind = origin.outputs[origin_slot]["type"]
        target_slot = target.input_slot(input_name, kind)
        link_id = len(self.links) + 1
        self.links.append([link_id, origin.id, origin_slot, target.id, target_slot, kind])
        origin.outputs[origin_slot]["links"].append(link_id)
        target.inputs[target_slot]["link"] = link_id

    def group(self, title: str, members: list[Node], color: str, margin: float = 20) -> None:
        x0 = min(n.pos[0] for n in members) - margin
        y0 = min(n.pos[1] for n in members) - TITLE_HEIGHT - GROUP_TITLE
        x1 = max(n.pos[0] + n.size[0] for n in members) + margin
        y1 = max(n.pos[1] + n.size[1] for n in members) + margin
        self.groups.append({"id": len(self.groups) + 1, "title": title, "bounding": [x0, y0, x1 - x0, y1 - y0],
                            "color": color, "font_size": 24, "flags": {}})

    def execution_order(self) -> dict[int, int]:
        """Topological order (sources first, ties by id), as the frontend stores in node.order."""
        parents = {node.id: {link[1] for link in self.links if link[3] == node.id} for node in self.nodes}
        order: dict[int, int] = {}
        while len(order) < len(self.nodes):
            ready = min(i for i, p in parents.items() if i not in order and p <= order.keys())
            order[ready] = len(order)
        return order

    def view(self) -> dict:
        """The canvas offset and zoom that show the whole graph on a 1600 x 900 screen."""
        x0 = min(n.pos[0] for n in self.nodes) - 40
        y0 = min(n.pos[1] for n in self.nodes) - TITLE_HEIGHT - GROUP_TITLE - 40
        x1 = max(n.pos[0] + n.size[0] for n in self.nodes) + 40
        y1 = max(n.pos[1] + n.size[1] for n in self.nodes) + 40
        scale = round(min(1.0, 1600 / (x1 - x0), 900 / (y1 - y0)), 3)
        return {"scale": scale, "offset": [-x0, -y0]}

    def to_json(self) -> dict:
        order, version, pack = self.execution_order(), pack_version(), pack_id()
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://github.com/adaptive-diffusion/{self.name}")),
            "revision": 0,
            "last_node_id": len(self.nodes),
            "last_link_id": len(self.links),
            "nodes": [node.to_json(order[node.id], version, pack) for node in self.nodes],
            "links": self.links,
            "groups": self.groups,
            "config": {},
            "extra": {"ds": self.view()},
            "version": UI_VERSION,
        }


# --- shared text ------------------------------------------------------------------------------

SETTINGS_TEXT = """\
What the AdaptiveDiffusion settings do
- threshold (δ): a step is skipped when the latent has been moving almost linearly, i.e. when
  |d_k − 2·d_(k−1) + d_(k−2)| ≤ 2δ·d_(k−1) with d_k = mean |x_k − x_(k−1)|. The sampler still makes
  its update, with a predicted noise instead of a model call. Higher δ skips more steps (faster,
  further from the full result). 0 turns skipping off: bit-identical to the core KSampler.
- max_skip_steps (Cmax): the most steps skipped in a row before one is computed again.
- warmup_steps: the first steps are always computed (they set the composition).
- keep_last_steps: the last steps are always computed, so no residual noise is left.
- noise_reuse: what a skipped step uses. hold = the last computed noise (the paper);
  linear / quadratic = the noise extrapolated in σ from the last 2 / 3 computed steps.
- per_sample: each batch item gets its own skip path.

The ComfyUI log prints one line per run, e.g.
"AdaptiveDiffusion: computed 24/50 steps, 26 skipped (2.08x fewer model calls)"."""

VERSION_TEXT = f"""\
Tested with ComfyUI {NEWEST_VERSION} (frontend 1.49) and ComfyUI {HOST_VERSION} (frontend 1.32)."""


def model_lines(*models: tuple[str, str, str]) -> str:
    return "\n".join(f"- ComfyUI/models/{folder}/{name}\n  {url}" for name, folder, url in models)


def prose(text: str) -> str:
    """Joins the lines of each paragraph and bullet ("- "): the Note's text box wraps by itself."""
    lines: list[str] = []
    for line in text.splitlines():
        continues = lines and lines[-1] and line.strip() and not line.startswith("- ")
        if continues:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return "\n".join(lines)


def note_text(title: str, intro: str, models: list[tuple[str, str, str]], extra: str, renames: str) -> str:
    models_heading = "Model files (when one is missing, ComfyUI lists it with its download link as the workflow opens):"
    return (f"{title}\n\n{prose(intro)}\n\n{models_heading}\n{model_lines(*models)}\n\n{prose(extra)}\n\n"
            f"{prose(SETTINGS_TEXT)}\n\n{prose(VERSION_TEXT)}\n{prose(renames)}")


SDXL_RENAMES = f"""\
ComfyUI {NEWEST_VERSION}: none of these nodes was renamed; the Int node (PrimitiveInt)
is still there, and newer versions set its control_after_generate to "fixed" by default."""

WAN_RENAMES = """\
Folder names: models/diffusion_models was models/unet and models/text_encoders was models/clip
in older ComfyUI; ComfyUI 0.3.75 reads both. Node names: EmptyHunyuanLatentVideo is shown as
"Empty HunyuanVideo 1.0 Latent" in 0.3.75 and "Empty Hunyuan Video 1.0 Latent" in newer ComfyUI
(search for either); SaveAnimatedWEBP is shown as "Save Animated WEBP" in newer ComfyUI. ComfyUI's
own Wan templates save video with Create Video + Save Video (mp4) instead; both work."""

SDXL_PROMPT = ("a lighthouse on a rocky coast at golden hour, waves breaking on the rocks, dramatic clouds, "
               "detailed 35mm photograph")
SDXL_NEGATIVE = "blurry, low quality, watermark, text, deformed"
WAN_NEGATIVE = ("blurry, low quality, static, still frame, overexposed, washed out, distorted, deformed hands, "
                "extra limbs, watermark, subtitles, text")


# --- the workflows ----------------------------------------------------------------------------

def sdxl_prompt_nodes(wf: Workflow, clip_from: Node, x: float, y: float, label: str = "") -> tuple[Node, Node]:
    positive = wf.add("CLIPTextEncode", (x, y), (420, 180), [SDXL_PROMPT], title=f"Positive prompt{label}",
                      colors=GREEN)
    negative = wf.add("CLIPTextEncode", (x, y + 230), (420, 120), [SDXL_NEGATIVE], title=f"Negative prompt{label}",
                      colors=RED)
    wf.connect(clip_from, "CLIP", positive, "clip")
    wf.connect(clip_from, "CLIP", negative, "clip")
    return positive, negative


def connect_sampler(wf: Workflow, sampler: Node, model: tuple[Node, str], positive: tuple[Node, str],
                    negative: tuple[Node, str], latent: tuple[Node, str]) -> None:
    for (origin, output), name in ((model, "model"), (positive, "positive"), (negative, "negative"),
                                   (latent, "latent_image")):
        wf.connect(origin, output, sampler, name)


def trace_views(wf: Workflow, samplers: list[Node], x: float, y: float, labels: str = "") -> list[Node]:
    """A Skip Mask Preview with one row per sampler and a Skip Stats per sampler."""
    preview = wf.add("AdaptiveSkipMaskPreview", (x, y), (620, 460), [labels])
    for sampler, name in zip(samplers, ("trace", "trace_2", "trace_3", "trace_4")):
        wf.connect(sampler, "trace", preview, name)
    stats = []
    for index, sampler in enumerate(samplers):
        node = wf.add("AdaptiveSkipStats", (x, y + 510 + index * 250), (620, 200))
        wf.connect(sampler, "trace", node, "trace")
        stats.append(node)
    return [preview, *stats]


def sdxl_txt2img() -> Workflow:
    wf = Workflow("sdxl_adaptive_txt2img")
    wf.note(note_text(
        "SDXL text-to-image with the Adaptive KSampler",
        "Top: Adaptive KSampler (δ = 0.01, the paper's SDXL setting) with Skip Mask Preview (which\n"
        "steps were computed or skipped) and Skip Stats. Bottom: the core KSampler on the same seed,\n"
        "steps and settings, for a side-by-side comparison. Seed and steps come from the two Int\n"
        "nodes, so both samplers always share them; keep cfg, sampler and scheduler equal too.\n"
        "1024×1024, 50 steps, euler / normal, cfg 7.",
        [SDXL_BASE], "Images are saved as AdaptiveDiffusion/sdxl_adaptive_* and AdaptiveDiffusion/sdxl_core_*.",
        SDXL_RENAMES), (-560, -80), (520, 760), "Read me: models and settings")
    ckpt = wf.add("CheckpointLoaderSimple", (0, 0), (420, 100), [SDXL_BASE[0]], models=[SDXL_BASE])
    positive, negative = sdxl_prompt_nodes(wf, ckpt, 0, 150)
    latent = wf.add("EmptyLatentImage", (0, 560), (420, 110), [1024, 1024, 1])
    seed = wf.add("PrimitiveInt", (0, 720), (420, 82), [SEED, "fixed"], title="Seed (both samplers)")
    steps = wf.add("PrimitiveInt", (0, 850), (420, 82), [50, "fixed"], title="Steps (both samplers)")
    wf.group("Model, prompt, size, seed", [ckpt, positive, negative, latent, seed, steps], GROUP_BLUE)

    adaptive = wf.add("AdaptiveKSampler", (500, 0), (340, 480),
                      [SEED, "fixed", 50, 7.0, "euler", "normal", 1.0] + adaptive_widgets(), colors=BLUE)
    connect_sampler(wf, adaptive, (ckpt, "MODEL"), (positive, "CONDITIONING"), (negative, "CONDITIONING"),
                    (latent, "LATENT"))
    decode = wf.add("VAEDecode", (880, 0), (210, 46))
    save = wf.add("SaveImage", (880, 90), (520, 600), ["AdaptiveDiffusion/sdxl_adaptive"],
                  title="Save Image (Adaptive KSampler)")
    wf.connect(adaptive, "LATENT", decode, "samples")
    wf.connect(ckpt, "VAE", decode, "vae")
    wf.connect(decode, "IMAGE", save, "images")
    views = trace_views(wf, [adaptive], 1440, 0)
    wf.group("AdaptiveDiffusion: Adaptive KSampler, its skip mask and stats", [adaptive, decode, save, *views],
             GROUP_GREEN)

    core = wf.add("KSampler", (500, 860), (340, 262), [SEED, "fixed", 50, 7.0, "euler", "normal", 1.0])
    connect_sampler(wf, core, (ckpt, "MODEL"), (positive, "CONDITIONING"), (negative, "CONDITIONING"),
                    (latent, "LATENT"))
    core_decode = wf.add("VAEDecode", (880, 860), (210, 46))
    core_save = wf.add("SaveImage", (880, 950), (520, 600), ["AdaptiveDiffusion/sdxl_core"],
                       title="Save Image (core KSampler)")
    wf.connect(core, "LATENT", core_decode, "samples")
    wf.connect(ckpt, "VAE", core_decode, "vae")
    wf.connect(core_decode, "IMAGE", core_save, "images")
    wf.group("Comparison: core KSampler, same seed and steps", [core, core_decode, core_save], GROUP_BROWN)

    for sampler in (adaptive, core):
        wf.connect(seed, "INT", sampler, "seed")
        wf.connect(steps, "INT", sampler, "steps")
    return wf


def sdxl_base_refiner() -> Workflow:
    wf = Workflow("sdxl_adaptive_base_refiner")
    wf.note(note_text(
        "SDXL base + refiner with Adaptive KSampler (Advanced) on both stages",
        "50 steps in all: the base computes steps 0-40 and returns its latent with the leftover\n"
        "noise; the refiner continues from step 40 to the end without adding new noise. Both stages\n"
        "run AdaptiveDiffusion (δ = 0.01); warm-up and kept final steps count within each stage's\n"
        "own steps. Total steps and the switch step come from the two Int nodes. The Skip Mask\n"
        "Preview shows one row per stage, each Skip Stats one stage.",
        [SDXL_BASE, SDXL_REFINER], "The image is saved as AdaptiveDiffusion/sdxl_base_refiner_*.",
        SDXL_RENAMES), (-560, -80), (520, 760), "Read me: models and settings")
    base_ckpt = wf.add("CheckpointLoaderSimple", (0, 0), (420, 100), [SDXL_BASE[0]], title="Load Checkpoint (base)",
                       models=[SDXL_BASE])
    base_pos, base_neg = sdxl_prompt_nodes(wf, base_ckpt, 0, 150, " (base)")
    latent = wf.add("EmptyLatentImage", (0, 560), (420, 110), [1024, 1024, 1])
    base = wf.add("AdaptiveKSamplerAdvanced", (500, 0), (360, 560),
                  ["enable", SEED, "fixed", 50, 7.0, "euler", "normal", 0, 40, "enable"] + adaptive_widgets(),
                  title="Adaptive KSampler (Advanced): base", colors=BLUE)
    connect_sampler(wf, base, (base_ckpt, "MODEL"), (base_pos, "CONDITIONING"), (base_neg, "CONDITIONING"),
                    (latent, "LATENT"))
    wf.group("SDXL base: steps 0 → 40, returns leftover noise", [base_ckpt, base_pos, base_neg, latent, base],
             GROUP_BLUE)

    steps = wf.add("PrimitiveInt", (0, 770), (420, 82), [50, "fixed"], title="Steps (both stages)")
    switch = wf.add("PrimitiveInt", (0, 900), (420, 82), [40, "fixed"], title="Refiner starts at step")
    wf.group("Schedule", [steps, switch], GROUP_PURPLE)

    top = 1100
    refiner_ckpt = wf.add("CheckpointLoaderSimple", (0, top), (420, 100), [SDXL_REFINER[0]],
                          title="Load Checkpoint (refiner)", models=[SDXL_REFINER])
    ref_pos, ref_neg = sdxl_prompt_nodes(wf, refiner_ckpt, 0, top + 150, " (refiner)")
    refiner = wf.add("AdaptiveKSamplerAdvanced", (500, top), (360, 560),
                     ["disable", 0, "fixed", 50, 7.0, "euler", "normal", 40, 10000, "disable"] + adaptive_widgets(),
                     title="Adaptive KSampler (Advanced): refiner", colors=BLUE)
    connect_sampler(wf, refiner, (refiner_ckpt, "MODEL"), (ref_pos, "CONDITIONING"), (ref_neg, "CONDITIONING"),
                    (base, "LATENT"))
    decode = wf.add("VAEDecode", (900, top), (210, 46))
    save = wf.add("SaveImage", (900, top + 90), (520, 600), ["AdaptiveDiffusion/sdxl_base_refiner"])
    wf.connect(refiner, "LATENT", decode, "samples")
    wf.connect(refiner_ckpt, "VAE", decode, "vae")
    wf.connect(decode, "IMAGE", save, "images")
    wf.group("SDXL refiner: steps 40 → 50", [refiner_ckpt, ref_pos, ref_neg, refiner, decode, save], GROUP_GREEN)

    views = trace_views(wf, [base, refiner], 940, 0, labels="base, refiner")
    wf.group("Skip masks of both stages", views, GROUP_BROWN)
    for sampler in (base, refiner):
        wf.connect(steps, "INT", sampler, "steps")
    wf.connect(switch, "INT", base, "end_at_step")
    wf.connect(switch, "INT", refiner, "start_at_step")
    return wf


def wan_loaders(wf: Workflow, unet: tuple[str, str, str], shift: float) -> list[Node]:
    """Diffusion model (through ModelSamplingSD3), text encoder and VAE."""
    model = wf.add("UNETLoader", (0, 0), (420, 82), [unet[0], "default"], models=[unet])
    clip = wf.add("CLIPLoader", (0, 130), (420, 106), [UMT5[0], "wan", "default"], models=[UMT5])
    vae = wf.add("VAELoader", (0, 290), (420, 58), [WAN_VAE[0]], models=[WAN_VAE])
    sampling = wf.add("ModelSamplingSD3", (0, 400), (420, 58), [shift])
    wf.connect(model, "MODEL", sampling, "model")
    return [model, clip, vae, sampling]


def wan_prompts(wf: Workflow, clip: Node, x: float, y: float, prompt: str) -> tuple[Node, Node]:
    positive = wf.add("CLIPTextEncode", (x, y), (420, 180), [prompt], title="Positive prompt", colors=GREEN)
    negative = wf.add("CLIPTextEncode", (x, y + 230), (420, 150), [WAN_NEGATIVE], title="Negative prompt",
                      colors=RED)
    wf.connect(clip, "CLIP", positive, "clip")
    wf.connect(clip, "CLIP", negative, "clip")
    return positive, negative


def wan_output(wf: Workflow, sampler: Node, vae: Node, x: float, prefix: str) -> list[Node]:
    decode = wf.add("VAEDecode", (x, 0), (210, 46))
    save = wf.add("SaveAnimatedWEBP", (x, 90), (480, 520), [prefix, 16.0, False, 90, "default"])
    wf.connect(sampler, "LATENT", decode, "samples")
    wf.connect(vae, "VAE", decode, "vae")
    wf.connect(decode, "IMAGE", save, "images")
    return [decode, save]


def wan21_t2v() -> Workflow:
    wf = Workflow("wan21_adaptive_t2v")
    wf.note(note_text(
        "Wan 2.1 text-to-video (1.3B) with the Adaptive KSampler",
        "832×480, 33 frames (16 fps), 30 steps, uni_pc / simple, cfg 6, ModelSamplingSD3 shift 8.\n"
        "The video latent comes from the core EmptyHunyuanLatentVideo node (Wan 2.1 uses the same\n"
        "latent layout; length must be 4k + 1 frames). The Adaptive KSampler decides per step for\n"
        "the whole video latent. For SamplerCustomAdvanced or another sampler node, put\n"
        "AdaptiveDiffusion (model patch) between ModelSamplingSD3 and the sampler instead.",
        [WAN_T2V, UMT5, WAN_VAE], "The video is saved as an animated WEBP: AdaptiveDiffusion/wan21_t2v_*.",
        WAN_RENAMES), (-560, -80), (520, 760), "Read me: models and settings")
    loaders = wan_loaders(wf, WAN_T2V, 8.0)
    _, clip, vae, sampling = loaders
    wf.group("Models", loaders, GROUP_BLUE)
    positive, negative = wan_prompts(wf, clip, 480, 0, "a red fox trotting through fresh snow in a pine forest, "
                                     "soft morning light, the camera tracks alongside, cinematic")
    latent = wf.add("EmptyHunyuanLatentVideo", (480, 440), (420, 130), [832, 480, 33, 1],
                    title="Empty video latent (EmptyHunyuanLatentVideo)")
    wf.group("Prompt and video size", [positive, negative, latent], GROUP_PURPLE)
    sampler = wf.add("AdaptiveKSampler", (960, 0), (340, 480),
                     [SEED, "fixed", 30, 6.0, "uni_pc", "simple", 1.0] + adaptive_widgets(), colors=BLUE)
    connect_sampler(wf, sampler, (sampling, "MODEL"), (positive, "CONDITIONING"), (negative, "CONDITIONING"),
                    (latent, "LATENT"))
    outputs = wan_output(wf, sampler, vae, 1340, "AdaptiveDiffusion/wan21_t2v")
    views = trace_views(wf, [sampler], 1860, 0)
    wf.group("AdaptiveDiffusion: sample, save the animation, skip mask and stats", [sampler, *outputs, *views],
             GROUP_GREEN)
    return wf


def wan21_i2v() -> Workflow:
    wf = Workflow("wan21_adaptive_i2v")
    wf.note(note_text(
        "Wan 2.1 image-to-video (14B, 480p) with the Adaptive KSampler, δ = 0.008",
        "δ = 0.008 is the paper's image-to-video setting (0.01 for images). Load Image starts with\n"
        "example.png, which ships in ComfyUI/input/; upload your own start image there. CLIP Vision\n"
        "Encode and WanImageToVideo turn it into the conditioning and the 832×480, 33-frame video\n"
        "latent. 30 steps, uni_pc / simple, cfg 6, ModelSamplingSD3 shift 8. The 14B model needs a\n"
        "large GPU; weight_dtype fp8_e4m3fn on Load Diffusion Model halves its memory.",
        [WAN_I2V, UMT5, WAN_VAE, CLIP_VISION_H],
        "The video is saved as an animated WEBP: AdaptiveDiffusion/wan21_i2v_*.", WAN_RENAMES +
        "\nWanImageToVideo has an extra optional input (ref_pad_image) in newer ComfyUI; leave it empty."),
        (-560, -80), (520, 800), "Read me: models and settings")
    loaders = wan_loaders(wf, WAN_I2V, 8.0)
    _, clip, vae, sampling = loaders
    vision = wf.add("CLIPVisionLoader", (0, 510), (420, 58), [CLIP_VISION_H[0]], models=[CLIP_VISION_H])
    wf.group("Models", [*loaders, vision], GROUP_BLUE)
    image = wf.add("LoadImage", (0, 700), (420, 380), [START_IMAGE, "image"], title="Start image")
    encode = wf.add("CLIPVisionEncode", (0, 1130), (420, 78), ["none"])
    wf.connect(vision, "CLIP_VISION", encode, "clip_vision")
    wf.connect(image, "IMAGE", encode, "image")
    wf.group("Start image", [image, encode], GROUP_BROWN)
    positive, negative = wan_prompts(wf, clip, 480, 0, "the scene comes to life: gentle natural motion, "
                                     "hair and clothes move in a light breeze, slow camera push-in")
    to_video = wf.add("WanImageToVideo", (480, 440), (420, 210), [832, 480, 33, 1])
    for origin, output, name in ((positive, "CONDITIONING", "positive"), (negative, "CONDITIONING", "negative"),
                                 (vae, "VAE", "vae"), (encode, "CLIP_VISION_OUTPUT", "clip_vision_output"),
                                 (image, "IMAGE", "start_image")):
        wf.connect(origin, output, to_video, name)
    wf.group("Prompt and video size", [positive, negative, to_video], GROUP_PURPLE)
    sampler = wf.add("AdaptiveKSampler", (960, 0), (340, 480),
                     [SEED, "fixed", 30, 6.0, "uni_pc", "simple", 1.0] + adaptive_widgets(threshold=0.008),
                     colors=BLUE)
    connect_sampler(wf, sampler, (sampling, "MODEL"), (to_video, "positive"), (to_video, "negative"),
                    (to_video, "latent"))
    outputs = wan_output(wf, sampler, vae, 1340, "AdaptiveDiffusion/wan21_i2v")
    views = trace_views(wf, [sampler], 1860, 0)
    wf.group("AdaptiveDiffusion (δ = 0.008): sample, save the animation, skip mask and stats",
             [sampler, *outputs, *views], GROUP_GREEN)
    return wf


BUILDERS = (sdxl_txt2img, sdxl_base_refiner, wan21_t2v, wan21_i2v)


def render_all() -> dict[str, str]:
    """{file name: JSON text} of every example workflow."""
    rendered = {}
    for build in BUILDERS:
        workflow = build()
        rendered[f"{workflow.name}.json"] = json.dumps(workflow.to_json(), indent=2, ensure_ascii=False) + "\n"
    return rendered


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the files on disk")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render_all().items():
        path = HERE / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    verb = "differ" if args.check else "written"
    print(f"{len(stale)} file(s) {verb}: {', '.join(stale) or '-'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
