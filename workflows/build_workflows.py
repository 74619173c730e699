#!/usr/bin/env python3
"""Writes the example workflows in this folder (UI format, what the ComfyUI frontend saves and
loads by drag and drop). The JSON files are the product; this script keeps them consistent.

    python3 workflows/build_workflows.py          # rewrite the JSON files
    python3 workflows/build_workflows.py --check  # exit 1 if a file differs from what it would write

Deterministic (no clock, no randomness). Node types, input names and widget order are those of
ComfyUI 0.3.75 (the SDXL and Wan 2.1 graphs) or 0.33.0 (the graphs of 2026's models, whose settings
come from 0.33.0's own templates); tests/test_workflows.py checks every file against a live server's
/object_info and loads it in the real frontend. Standard library only.

Layout of this file: the node types it knows (sockets, outputs, drawn size); the UI format (Node,
Workflow); small pieces that add the recurring parts of a graph (loaders, prompts, samplers,
decode and save, skip mask and stats); the Notes' text; and at the end GRAPHS, one entry per file.
To add a workflow: add any new node types to SHAPES and SIZES, its model files, a ReadMe, a build
function made of the pieces, and a Graph line.
"""
from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

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
    "ModelSamplingAuraFlow": ([("model", "MODEL")], [("MODEL", "MODEL")]),
    "EmptySD3LatentImage": ([], [("LATENT", "LATENT")]),
    "EmptyFlux2LatentImage": ([], [("LATENT", "LATENT")]),
    "Flux2Scheduler": ([], [("SIGMAS", "SIGMAS")]),
    "BasicScheduler": ([("model", "MODEL")], [("SIGMAS", "SIGMAS")]),
    "FluxGuidance": ([("conditioning", "CONDITIONING")], [("CONDITIONING", "CONDITIONING")]),
    "BasicGuider": ([("model", "MODEL"), ("conditioning", "CONDITIONING")], [("GUIDER", "GUIDER")]),
    "KSamplerSelect": ([], [("SAMPLER", "SAMPLER")]),
    "RandomNoise": ([], [("NOISE", "NOISE")]),
    "SamplerCustomAdvanced": ([("noise", "NOISE"), ("guider", "GUIDER"), ("sampler", "SAMPLER"), ("sigmas", "SIGMAS"),
                               ("latent_image", "LATENT")], [("output", "LATENT"), ("denoised_output", "LATENT")]),
    "AdaptiveDiffusionPatch": ([("model", "MODEL"), ("skip_path", "SKIP_PATH")], [("MODEL", "MODEL")]),
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
    "MiniMaxH3ImageToVideo": ([("clip", "CLIP"), ("vae", "VAE"), ("first_frame", "IMAGE"), ("last_frame", "IMAGE")],
                              [("positive", "CONDITIONING"), ("LATENT", "LATENT")]),
    "VAEDecodeAudio": ([("samples", "LATENT"), ("vae", "VAE")], [("AUDIO", "AUDIO")]),
    "SaveAudio": ([("audio", "AUDIO")], []),
}

# The size each node type is drawn at (tall enough for its widgets), unless a graph asks otherwise.
SIZES: dict[str, tuple[float, float]] = {
    "CheckpointLoaderSimple": (420, 100), "UNETLoader": (420, 82), "CLIPLoader": (420, 106),
    "VAELoader": (420, 58), "CLIPVisionLoader": (420, 58), "LoadImage": (420, 380), "PrimitiveInt": (420, 82),
    "CLIPTextEncode": (420, 180), "CLIPVisionEncode": (420, 78), "EmptyLatentImage": (420, 110),
    "EmptyHunyuanLatentVideo": (420, 130), "WanImageToVideo": (420, 210), "ModelSamplingSD3": (420, 58),
    "KSampler": (340, 262), "AdaptiveKSampler": (340, 480), "AdaptiveKSamplerAdvanced": (360, 560),
    "AdaptiveSkipMaskPreview": (620, 460), "AdaptiveSkipStats": (620, 200), "VAEDecode": (210, 46),
    "SaveImage": (520, 600), "SaveAnimatedWEBP": (480, 520),
    "ModelSamplingAuraFlow": (420, 58), "EmptySD3LatentImage": (420, 110), "EmptyFlux2LatentImage": (420, 110),
    "Flux2Scheduler": (420, 106), "BasicScheduler": (420, 106), "FluxGuidance": (420, 58), "BasicGuider": (420, 46),
    "KSamplerSelect": (420, 58), "RandomNoise": (420, 82), "SamplerCustomAdvanced": (340, 126),
    "AdaptiveDiffusionPatch": (360, 300),
    "MiniMaxH3ImageToVideo": (420, 400), "VAEDecodeAudio": (240, 46), "SaveAudio": (480, 200),
}
# Our samplers with the speed widget (the files of 2026's models set it) are one widget taller.
SPEED_SIZES = {"AdaptiveKSampler": (340, 510), "AdaptiveKSamplerAdvanced": (400, 590)}
# Widgets of the save nodes after the file name prefix: the animation at Wan's 16 fps, lossy, quality 90.
SAVE_OPTIONS: dict[str, list] = {"SaveImage": [], "SaveAnimatedWEBP": [16.0, False, 90, "default"]}

# LiteGraph's node colour pairs (as the frontend's palette names them) and group colours.
GREEN = ("#232", "#353")
RED = ("#322", "#533")
YELLOW = ("#432", "#653")
BLUE = ("#223", "#335")
GROUP_BLUE, GROUP_GREEN, GROUP_BROWN, GROUP_PURPLE = "#3f789e", "#8A8", "#b58b2a", "#a1309b"
TITLE_HEIGHT = 30  # LiteGraph draws a node's title bar above node.pos
GROUP_TITLE = 50  # room for a group's title bar above its first node's title
GAP = 40  # between a node and the one placed to its right


class ModelFile(NamedTuple):
    name: str
    folder: str  # under ComfyUI/models/
    url: str


def repacked(repository: str, folder: str, name: str) -> ModelFile:
    """A model file that sits under `folder/` of a repackaged repository, as ComfyUI/models/ has it."""
    return ModelFile(name, folder, f"{repository}/{folder}/{name}")


HF = "https://huggingface.co"
WAN_REPACK = f"{HF}/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files"
SDXL_BASE = ModelFile("sd_xl_base_1.0.safetensors", "checkpoints",
                      f"{HF}/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/sd_xl_base_1.0.safetensors")
SDXL_REFINER = ModelFile("sd_xl_refiner_1.0.safetensors", "checkpoints",
                         f"{HF}/stabilityai/stable-diffusion-xl-refiner-1.0/resolve/main/sd_xl_refiner_1.0.safetensors")
WAN_T2V = repacked(WAN_REPACK, "diffusion_models", "wan2.1_t2v_1.3B_fp16.safetensors")
WAN_I2V = repacked(WAN_REPACK, "diffusion_models", "wan2.1_i2v_480p_14B_fp16.safetensors")
UMT5 = repacked(WAN_REPACK, "text_encoders", "umt5_xxl_fp8_e4m3fn_scaled.safetensors")
WAN_VAE = repacked(WAN_REPACK, "vae", "wan_2.1_vae.safetensors")
CLIP_VISION_H = repacked(WAN_REPACK, "clip_vision", "clip_vision_h.safetensors")
START_IMAGE = "example.png"  # ships in every ComfyUI's input/ folder

# The model files of ComfyUI 0.33.0's own templates for 2026's models (their names and links).
WAN22_REPACK = f"{HF}/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files"
WAN22_T2V_HIGH = repacked(WAN22_REPACK, "diffusion_models", "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors")
WAN22_T2V_LOW = repacked(WAN22_REPACK, "diffusion_models", "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors")
WAN22_I2V_HIGH = repacked(WAN22_REPACK, "diffusion_models", "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors")
WAN22_I2V_LOW = repacked(WAN22_REPACK, "diffusion_models", "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors")
WAN22_VAE = repacked(WAN22_REPACK, "vae", "wan_2.1_vae.safetensors")
QWEN_REPACK = f"{HF}/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files"
QWEN_IMAGE = repacked(QWEN_REPACK, "diffusion_models", "qwen_image_fp8_e4m3fn.safetensors")
QWEN_VL = repacked(QWEN_REPACK, "text_encoders", "qwen_2.5_vl_7b_fp8_scaled.safetensors")
QWEN_VAE = repacked(QWEN_REPACK, "vae", "qwen_image_vae.safetensors")
FLUX2_REPACK = f"{HF}/Comfy-Org/flux2-dev/resolve/main/split_files"
FLUX2_DEV = repacked(FLUX2_REPACK, "diffusion_models", "flux2_dev_fp8mixed.safetensors")
FLUX2_MISTRAL = repacked(FLUX2_REPACK, "text_encoders", "mistral_3_small_flux2_bf16.safetensors")
FLUX2_VAE = ModelFile("full_encoder_small_decoder.safetensors", "vae",
                      f"{HF}/black-forest-labs/FLUX.2-small-decoder/resolve/main/full_encoder_small_decoder.safetensors")
Z_IMAGE = ModelFile("z_image_bf16.safetensors", "diffusion_models",
                    f"{HF}/Comfy-Org/z_image/resolve/main/split_files/diffusion_models/z_image_bf16.safetensors")
Z_TURBO_REPACK = f"{HF}/Comfy-Org/z_image_turbo/resolve/main/split_files"
QWEN3_4B = repacked(Z_TURBO_REPACK, "text_encoders", "qwen_3_4b.safetensors")
FLUX_AE = repacked(Z_TURBO_REPACK, "vae", "ae.safetensors")
H3_REPO = f"{HF}/Comfy-Org/MiniMax-H3/resolve/main"
H3_FL2VA = repacked(H3_REPO, "diffusion_models", "minimax_h3_fl2va_pruned_int8_convrot.safetensors")
H3_QWEN3VL = repacked(H3_REPO, "text_encoders", "qwen3vl_32b_minimax_h3_nvfp4_awq.safetensors")
H3_VIDEO_VAE = repacked(H3_REPO, "vae", "minimax_h3_video_vae_fp16.safetensors")
H3_AUDIO_VAE = repacked(H3_REPO, "vae", "minimax_h3_audio_vae_fp32.safetensors")

SEED = 20241122
ADAPTIVE_DEFAULTS = {"threshold": 0.01, "max_skip_steps": 4, "warmup_steps": 4, "keep_last_steps": 1,
                     "noise_reuse": "linear", "per_sample": False}


# The graphs of 2026's models ask for a speed (the input appended after the older files were saved,
# which without it keep the paper's δ rule) and use the node's default noise reuse.
SPEED = "2x"
SPEED_DEFAULTS = {**ADAPTIVE_DEFAULTS, "noise_reuse": "quadratic", "speed": SPEED}


def adaptive_widgets(**overrides: Any) -> list:
    defaults = SPEED_DEFAULTS if "speed" in overrides else ADAPTIVE_DEFAULTS
    settings = {**defaults, **overrides}
    return [settings[name] for name in defaults]


@dataclass(frozen=True)
class Sampling:
    """The settings every sampler of a graph shares, as the KSampler widgets list them."""
    steps: int
    cfg: float
    sampler: str
    scheduler: str

    def ksampler(self) -> list:
        return [SEED, "fixed", self.steps, self.cfg, self.sampler, self.scheduler, 1.0]

    def advanced(self, start: int, end: int) -> list:
        """KSampler (Advanced) widgets of the stage that runs steps start → end: only the first stage
        adds noise (so only its seed matters), and every stage but the last hands on its leftover noise."""
        first, last = start == 0, end >= self.steps
        return ["enable" if first else "disable", SEED if first else 0, "fixed", self.steps, self.cfg, self.sampler,
                self.scheduler, start, end, "disable" if last else "enable"]


SDXL_SAMPLING = Sampling(50, 7.0, "euler", "normal")
WAN_SAMPLING = Sampling(30, 6.0, "uni_pc", "simple")
WAN_VIDEO = [832, 480, 33, 1]  # width, height, frames (4k + 1), batch
# From ComfyUI 0.33.0's templates (video_wan2_2_14B_t2v / _i2v without the 4-step LoRA, image_qwen_image
# without the Lightning LoRA, image_z_image, image_flux2_text_to_image).
WAN22_SAMPLING = Sampling(20, 3.5, "euler", "simple")
WAN22_SWITCH = 10  # the low-noise expert takes over at this step
WAN22_SHIFT = 5.0
WAN22_VIDEO = [640, 640, 81, 1]  # 5 s at 16 fps
QWEN_SAMPLING = Sampling(20, 4.0, "euler", "simple")
QWEN_SHIFT = 3.1
Z_IMAGE_SAMPLING = Sampling(25, 4.0, "res_multistep", "simple")
Z_IMAGE_SHIFT = 3.0
FLUX2_STEPS, FLUX2_SAMPLER, FLUX2_GUIDANCE = 20, "euler", 4.0
# video_minimax_h3_i2v without its Turbo LoRA (turbo_mode off): BasicScheduler simple, 20 steps, res_multistep,
# Basic Guider (no negative, cfg 1); 640×640 (its Resolution Selector: 1:1, 0.4 MP, multiple 32), 5 s → 124 frames
# (17k + 5) at 24 fps.
H3_STEPS, H3_SAMPLER, H3_SCHEDULER = 20, "res_multistep", "simple"
H3_VIDEO = [640, 640, 124]  # width, height, length
H3_FPS = 24.0


def pack_version() -> str:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"]


def pack_id() -> str:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["name"]


# --- the UI format ------------------------------------------------------------------------------

Port = tuple["Node", str]  # a node's output, by name: what a link starts from


@dataclass
class Node:
    id: int
    type: str
    pos: tuple[float, float]
    size: tuple[float, float]
    widgets: list
    title: str | None = None
    colors: tuple[str, str] | None = None
    models: list[ModelFile] = field(default_factory=list)
    inputs: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        sockets, outputs = SHAPES[self.type]
        self.inputs = [{"name": name, "type": kind, "link": None} for name, kind in sockets]
        self.outputs = [{"name": name, "type": kind, "links": []} for name, kind in outputs]

    def out(self, name: str) -> Port:
        self.output_slot(name)  # a misspelt output fails here, where the graph names it
        return self, name

    def right(self) -> float:
        """The x at which a node placed to the right of this one starts."""
        return self.pos[0] + self.size[0] + GAP

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

    def properties(self, version: str, pack: str, core_version: str) -> dict:
        if self.type in FRONTEND_ONLY:
            return {"text": ""}
        properties = {"cnr_id": pack if self.type in OUR_NODES else "comfy-core",
                      "ver": version if self.type in OUR_NODES else core_version,
                      "Node name for S&R": self.type}
        if self.models:
            properties["models"] = [{"name": name, "url": url, "directory": folder}
                                    for name, folder, url in self.models]
        return properties

    def to_json(self, order: int, version: str, pack: str, core_version: str) -> dict:
        data: dict[str, Any] = {"id": self.id, "type": self.type, "pos": list(self.pos), "size": list(self.size),
                                "flags": {}, "order": order, "mode": 0, "inputs": self.inputs,
                                "outputs": self.outputs}
        if self.title:
            data["title"] = self.title
        data["properties"] = self.properties(version, pack, core_version)
        data["widgets_values"] = self.widgets
        if self.colors:
            data["color"], data["bgcolor"] = self.colors
        return data


class Workflow:
    """Nodes, links and groups, written out in the frontend's UI format (version 0.4). Node, link and
    group ids follow the order of the calls, so a graph's pieces must keep theirs."""

    def __init__(self, name: str, core_version: str = HOST_VERSION):
        self.name = name
        self.core_version = core_version  # the ComfyUI whose core nodes the graph uses (properties.ver)
        self.nodes: list[Node] = []
        self.links: list[list] = []
        self.groups: list[dict] = []

    def add(self, node_type: str, pos: tuple[float, float], widgets: list | None = None, *,
            size: tuple[float, float] | None = None, **extra: Any) -> Node:
        node = Node(len(self.nodes) + 1, node_type, pos, size or SIZES[node_type], list(widgets or []), **extra)
        self.nodes.append(node)
        return node

    def connect(self, origin: Node, output: str, target: Node, input_name: str) -> None:
        origin_slot = origin.output_slot(output)
        kind = origin.outputs[origin_slot]["type"]
        target_slot = target.input_slot(input_name, kind)
        link_id = len(self.links) + 1
        self.links.append([link_id, origin.id, origin_slot, target.id, target_slot, kind])
        origin.outputs[origin_slot]["links"].append(link_id)
        target.inputs[target_slot]["link"] = link_id

    def wire(self, target: Node, **sources: Port) -> Node:
        """Links each named input of target to a port, in the order given."""
        for input_name, (origin, output) in sources.items():
            self.connect(origin, output, target, input_name)
        return target

    def group(self, title: str, members: list[Node], color: str, margin: float = 20) -> None:
        x0 = min(n.pos[0] for n in members) - margin
        y0 = min(n.pos[1] for n in members) - TITLE_HEIGHT - GROUP_TITLE
        x1 = max(n.pos[0] + n.size[0] for n in members) + margin
        y1 = max(n.pos[1] + n.size[1] for n in members) + margin
        self.groups.append({"id": len(self.groups) + 1, "title": title, "bounding": [x0, y0, x1 - x0, y1 - y0],
                            "color": color, "font_size": 24, "flags": {}})

    def model_files(self) -> list[ModelFile]:
        # In node order, each once: two loaders of one file need one download.
        return list(dict.fromkeys(model for node in self.nodes for model in node.models))

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
            "nodes": [node.to_json(order[node.id], version, pack, self.core_version) for node in self.nodes],
            "links": self.links,
            "groups": self.groups,
            "config": {},
            "extra": {"ds": self.view()},
            "version": UI_VERSION,
        }


# --- pieces: each adds a recurring part of a graph and returns what later pieces link to ---------

@dataclass
class Models:
    """What a graph's loaders provide, whichever nodes load it."""
    nodes: list[Node]
    model: Port
    clip: Port
    vae: Port


@dataclass(frozen=True)
class Prompt:
    positive: str
    negative: str
    negative_height: float  # the negative box is sized to its text


@dataclass
class Prompts:
    nodes: list[Node]
    positive: Port
    negative: Port


class SamplerInputs(NamedTuple):
    """The ports a sampler node's sockets take, in its socket order."""
    model: Port
    positive: Port
    negative: Port
    latent_image: Port


def load(wf: Workflow, node_type: str, file: ModelFile, at: tuple[float, float], *options: Any,
         title: str | None = None) -> Node:
    # The models property lets the frontend offer the download when the file is missing.
    return wf.add(node_type, at, [file.name, *options], title=title, models=[file])


def checkpoint(wf: Workflow, file: ModelFile, at: tuple[float, float], title: str | None = None) -> Models:
    node = load(wf, "CheckpointLoaderSimple", file, at, title=title)
    return Models([node], node.out("MODEL"), node.out("CLIP"), node.out("VAE"))


def wan_models(wf: Workflow, unet: ModelFile, shift: float = 8.0) -> Models:
    """Wan's diffusion model (through ModelSamplingSD3), text encoder and VAE, stacked at x = 0."""
    model = load(wf, "UNETLoader", unet, (0, 0), "default")
    clip = load(wf, "CLIPLoader", UMT5, (0, 130), "wan", "default")
    vae = load(wf, "VAELoader", WAN_VAE, (0, 290))
    sampling = wf.wire(wf.add("ModelSamplingSD3", (0, 400), [shift]), model=model.out("MODEL"))
    return Models([model, clip, vae, sampling], sampling.out("MODEL"), clip.out("CLIP"), vae.out("VAE"))


def encode(wf: Workflow, clip: Port, prompt: Prompt, at: tuple[float, float], label: str = "") -> Prompts:
    x, y = at
    positive = wf.add("CLIPTextEncode", (x, y), [prompt.positive], title=f"Positive prompt{label}", colors=GREEN)
    negative = wf.add("CLIPTextEncode", (x, y + 230), [prompt.negative], size=(420, prompt.negative_height),
                      title=f"Negative prompt{label}", colors=RED)
    wf.wire(positive, clip=clip)
    wf.wire(negative, clip=clip)
    return Prompts([positive, negative], positive.out("CONDITIONING"), negative.out("CONDITIONING"))


def int_input(wf: Workflow, at: tuple[float, float], value: int, title: str) -> Node:
    """An Int node; linked to several samplers, it keeps a setting they must share equal."""
    return wf.add("PrimitiveInt", at, [value, "fixed"], title=title)


def sampler(wf: Workflow, node_type: str, at: tuple[float, float], widgets: list, inputs: SamplerInputs,
            title: str | None = None, size: tuple[float, float] | None = None) -> Node:
    colors = BLUE if node_type in OUR_NODES else None  # ours stand out from the core samplers
    return wf.wire(wf.add(node_type, at, widgets, title=title, colors=colors, size=size), **inputs._asdict())


def adaptive_ksampler(wf: Workflow, at: tuple[float, float], sampling: Sampling, inputs: SamplerInputs,
                      **adaptive: Any) -> Node:
    return sampler(wf, "AdaptiveKSampler", at, sampling.ksampler() + adaptive_widgets(**adaptive), inputs,
                   size=SPEED_SIZES["AdaptiveKSampler"] if "speed" in adaptive else None)


def adaptive_stage(wf: Workflow, at: tuple[float, float], sampling: Sampling, steps: tuple[int, int],
                   inputs: SamplerInputs, title: str, **adaptive: Any) -> Node:
    """Adaptive KSampler (Advanced) for the steps start → end of a multi-stage graph."""
    widgets = sampling.advanced(*steps) + adaptive_widgets(**adaptive)
    return sampler(wf, "AdaptiveKSamplerAdvanced", at, widgets, inputs, title=title,
                   size=SPEED_SIZES["AdaptiveKSamplerAdvanced"] if "speed" in adaptive else None)


def decode_and_save(wf: Workflow, sampler_node: Node, vae: Port, prefix: str, save_type: str = "SaveImage",
                    title: str | None = None) -> list[Node]:
    """VAE Decode and a save node, to the right of the sampler."""
    x, y = sampler_node.right(), sampler_node.pos[1]
    decode = wf.add("VAEDecode", (x, y))
    save = wf.add(save_type, (x, y + 90), [prefix, *SAVE_OPTIONS[save_type]], title=title)
    wf.wire(decode, samples=sampler_node.out("LATENT"), vae=vae)
    wf.wire(save, images=decode.out("IMAGE"))
    return [decode, save]


def trace_views(wf: Workflow, samplers: list[Node], at: tuple[float, float], labels: str = "") -> list[Node]:
    """A Skip Mask Preview with one row per sampler and a Skip Stats per sampler."""
    x, y = at
    preview = wf.add("AdaptiveSkipMaskPreview", (x, y), [labels])
    slots = [name for name, _ in SHAPES["AdaptiveSkipMaskPreview"][0]]
    assert len(samplers) <= len(slots), f"a Skip Mask Preview shows at most {len(slots)} samplers"
    wf.wire(preview, **{slot: s.out("trace") for slot, s in zip(slots, samplers)})
    stats = [wf.wire(wf.add("AdaptiveSkipStats", (x, y + 510 + index * 250)), trace=s.out("trace"))
             for index, s in enumerate(samplers)]
    return [preview, *stats]


def adaptive_output(wf: Workflow, sampler_node: Node, vae: Port, prefix: str, group: str,
                    save_type: str = "SaveImage", save_title: str | None = None) -> None:
    """Decode and save the sampler's result, show its skip mask and stats, and group all that."""
    outputs = decode_and_save(wf, sampler_node, vae, prefix, save_type, save_title)
    views = trace_views(wf, [sampler_node], (outputs[-1].right(), sampler_node.pos[1]))
    wf.group(group, [sampler_node, *outputs, *views], GROUP_GREEN)


# --- the Notes ----------------------------------------------------------------------------------

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
NEWEST_ONLY_TEXT = f"""\
Validated on ComfyUI {NEWEST_VERSION} (frontend 1.49), with the settings of its own template for this
model. ComfyUI {HOST_VERSION} has the same nodes and accepts the workflow too."""

SPEED_TEXT = f"""\
Speed: the Adaptive nodes here are set to speed {SPEED}, about half the model calls. The skips are
planned from the sampler's σ schedule where they cost the picture least; a skip whose predicted error
is too large is refused (moved to a later step). With a speed, δ only switches skipping on;
1.75x is closer to full steps, 2.5x / 3x for drafts; "threshold (δ)" = the paper's rule alone.
Skip Stats and the node's summary say how many calls ran."""

MODELS_HEADING = "Model files (when one is missing, ComfyUI lists it with its download link as the workflow opens):"


def model_lines(models: list[ModelFile]) -> str:
    return "\n".join(f"- ComfyUI/models/{m.folder}/{m.name}\n  {m.url}" for m in models)


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


@dataclass(frozen=True)
class ReadMe:
    """The Note a graph opens with. Its list of model files is not written here: it is read from the
    graph's loaders, so the Note cannot promise a file the graph does not load, or miss one."""
    title: str
    intro: str
    saved: str  # where the result goes
    renames: str  # what newer ComfyUI calls or files differently
    height: float = 760
    newest_only: bool = False  # a 2026 model: speed 2x, validated on NEWEST_VERSION only
    versions: str = ""  # instead of the standard versions paragraph, when it does not hold

    def text(self, models: list[ModelFile]) -> str:
        settings = f"{prose(SPEED_TEXT)}\n\n{prose(SETTINGS_TEXT)}" if self.newest_only else prose(SETTINGS_TEXT)
        versions = self.versions or (NEWEST_ONLY_TEXT if self.newest_only else VERSION_TEXT)
        renames = f"\n{prose(self.renames)}" if self.renames else ""
        return (f"{self.title}\n\n{prose(self.intro)}\n\n{MODELS_HEADING}\n{model_lines(models)}\n\n"
                f"{prose(self.saved)}\n\n{settings}\n\n{prose(versions)}{renames}")


SDXL_RENAMES = f"""\
ComfyUI {NEWEST_VERSION}: none of these nodes was renamed; the Int node (PrimitiveInt)
is still there, and newer versions set its control_after_generate to "fixed" by default."""

WAN_RENAMES = """\
Folder names: models/diffusion_models was models/unet and models/text_encoders was models/clip
in older ComfyUI; ComfyUI 0.3.75 reads both. Node names: EmptyHunyuanLatentVideo is shown as
"Empty HunyuanVideo 1.0 Latent" in 0.3.75 and "Empty Hunyuan Video 1.0 Latent" in newer ComfyUI
(search for either); SaveAnimatedWEBP is shown as "Save Animated WEBP" in newer ComfyUI. ComfyUI's
own Wan templates save video with Create Video + Save Video (mp4) instead; both work."""

SDXL_PROMPT = Prompt("a lighthouse on a rocky coast at golden hour, waves breaking on the rocks, dramatic clouds, "
                     "detailed 35mm photograph", "blurry, low quality, watermark, text, deformed", 120)
WAN_NEGATIVE = ("blurry, low quality, static, still frame, overexposed, washed out, distorted, deformed hands, "
                "extra limbs, watermark, subtitles, text")
WAN_T2V_PROMPT = Prompt("a red fox trotting through fresh snow in a pine forest, soft morning light, the camera "
                        "tracks alongside, cinematic", WAN_NEGATIVE, 150)
WAN_I2V_PROMPT = Prompt("the scene comes to life: gentle natural motion, hair and clothes move in a light breeze, "
                        "slow camera push-in", WAN_NEGATIVE, 150)


# --- the graphs ---------------------------------------------------------------------------------

SDXL_TXT2IMG_README = ReadMe(
    "SDXL text-to-image with the Adaptive KSampler",
    "Top: Adaptive KSampler (δ = 0.01, the paper's SDXL setting) with Skip Mask Preview (which\n"
    "steps were computed or skipped) and Skip Stats. Bottom: the core KSampler on the same seed,\n"
    "steps and settings, for a side-by-side comparison. Seed and steps come from the two Int\n"
    "nodes, so both samplers always share them; keep cfg, sampler and scheduler equal too.\n"
    "1024×1024, 50 steps, euler / normal, cfg 7.",
    "Images are saved as AdaptiveDiffusion/sdxl_adaptive_* and AdaptiveDiffusion/sdxl_core_*.", SDXL_RENAMES)


def sdxl_txt2img(wf: Workflow) -> None:
    models = checkpoint(wf, SDXL_BASE, (0, 0))
    prompts = encode(wf, models.clip, SDXL_PROMPT, (0, 150))
    latent = wf.add("EmptyLatentImage", (0, 560), [1024, 1024, 1])
    seed = int_input(wf, (0, 720), SEED, "Seed (both samplers)")
    steps = int_input(wf, (0, 850), SDXL_SAMPLING.steps, "Steps (both samplers)")
    wf.group("Model, prompt, size, seed", [*models.nodes, *prompts.nodes, latent, seed, steps], GROUP_BLUE)
    inputs = SamplerInputs(models.model, prompts.positive, prompts.negative, latent.out("LATENT"))
    adaptive = adaptive_ksampler(wf, (500, 0), SDXL_SAMPLING, inputs)
    adaptive_output(wf, adaptive, models.vae, "AdaptiveDiffusion/sdxl_adaptive",
                    "AdaptiveDiffusion: Adaptive KSampler, its skip mask and stats",
                    save_title="Save Image (Adaptive KSampler)")
    core = sampler(wf, "KSampler", (500, 860), SDXL_SAMPLING.ksampler(), inputs)
    outputs = decode_and_save(wf, core, models.vae, "AdaptiveDiffusion/sdxl_core", title="Save Image (core KSampler)")
    wf.group("Comparison: core KSampler, same seed and steps", [core, *outputs], GROUP_BROWN)
    for node in (adaptive, core):
        wf.wire(node, seed=seed.out("INT"), steps=steps.out("INT"))


SDXL_BASE_REFINER_README = ReadMe(
    "SDXL base + refiner with Adaptive KSampler (Advanced) on both stages",
    "50 steps in all: the base computes steps 0-40 and returns its latent with the leftover\n"
    "noise; the refiner continues from step 40 to the end without adding new noise. Both stages\n"
    "run AdaptiveDiffusion (δ = 0.01); warm-up and kept final steps count within each stage's\n"
    "own steps. Total steps and the switch step come from the two Int nodes. The Skip Mask\n"
    "Preview shows one row per stage, each Skip Stats one stage.",
    "The image is saved as AdaptiveDiffusion/sdxl_base_refiner_*.", SDXL_RENAMES)


def sdxl_base_refiner(wf: Workflow) -> None:
    base_models = checkpoint(wf, SDXL_BASE, (0, 0), "Load Checkpoint (base)")
    base_prompts = encode(wf, base_models.clip, SDXL_PROMPT, (0, 150), " (base)")
    latent = wf.add("EmptyLatentImage", (0, 560), [1024, 1024, 1])
    base = adaptive_stage(wf, (500, 0), SDXL_SAMPLING, (0, 40), SamplerInputs(
        base_models.model, base_prompts.positive, base_prompts.negative, latent.out("LATENT")),
        "Adaptive KSampler (Advanced): base")
    wf.group("SDXL base: steps 0 → 40, returns leftover noise",
             [*base_models.nodes, *base_prompts.nodes, latent, base], GROUP_BLUE)
    steps = int_input(wf, (0, 770), SDXL_SAMPLING.steps, "Steps (both stages)")
    switch = int_input(wf, (0, 900), 40, "Refiner starts at step")
    wf.group("Schedule", [steps, switch], GROUP_PURPLE)
    models = checkpoint(wf, SDXL_REFINER, (0, 1100), "Load Checkpoint (refiner)")
    prompts = encode(wf, models.clip, SDXL_PROMPT, (0, 1250), " (refiner)")
    refiner = adaptive_stage(wf, (500, 1100), SDXL_SAMPLING, (40, 10000), SamplerInputs(
        models.model, prompts.positive, prompts.negative, base.out("LATENT")), "Adaptive KSampler (Advanced): refiner")
    outputs = decode_and_save(wf, refiner, models.vae, "AdaptiveDiffusion/sdxl_base_refiner")
    wf.group("SDXL refiner: steps 40 → 50", [*models.nodes, *prompts.nodes, refiner, *outputs], GROUP_GREEN)
    wf.group("Skip masks of both stages", trace_views(wf, [base, refiner], (940, 0), "base, refiner"), GROUP_BROWN)
    wf.wire(base, steps=steps.out("INT"))
    wf.wire(refiner, steps=steps.out("INT"))
    wf.wire(base, end_at_step=switch.out("INT"))
    wf.wire(refiner, start_at_step=switch.out("INT"))


WAN21_T2V_README = ReadMe(
    "Wan 2.1 text-to-video (1.3B) with the Adaptive KSampler",
    "832×480, 33 frames (16 fps), 30 steps, uni_pc / simple, cfg 6, ModelSamplingSD3 shift 8.\n"
    "The video latent comes from the core EmptyHunyuanLatentVideo node (Wan 2.1 uses the same\n"
    "latent layout; length must be 4k + 1 frames). The Adaptive KSampler decides per step for\n"
    "the whole video latent. For SamplerCustomAdvanced or another sampler node, put\n"
    "AdaptiveDiffusion (model patch) between ModelSamplingSD3 and the sampler instead.",
    "The video is saved as an animated WEBP: AdaptiveDiffusion/wan21_t2v_*.", WAN_RENAMES)


def wan21_t2v(wf: Workflow) -> None:
    models = wan_models(wf, WAN_T2V)
    wf.group("Models", models.nodes, GROUP_BLUE)
    prompts = encode(wf, models.clip, WAN_T2V_PROMPT, (480, 0))
    latent = wf.add("EmptyHunyuanLatentVideo", (480, 440), WAN_VIDEO,
                    title="Empty video latent (EmptyHunyuanLatentVideo)")
    wf.group("Prompt and video size", [*prompts.nodes, latent], GROUP_PURPLE)
    inputs = SamplerInputs(models.model, prompts.positive, prompts.negative, latent.out("LATENT"))
    adaptive = adaptive_ksampler(wf, (960, 0), WAN_SAMPLING, inputs)
    adaptive_output(wf, adaptive, models.vae, "AdaptiveDiffusion/wan21_t2v",
                    "AdaptiveDiffusion: sample, save the animation, skip mask and stats", "SaveAnimatedWEBP")


WAN21_I2V_README = ReadMe(
    "Wan 2.1 image-to-video (14B, 480p) with the Adaptive KSampler, δ = 0.008",
    "δ = 0.008 is the paper's image-to-video setting (0.01 for images). Load Image starts with\n"
    "example.png, which ships in ComfyUI/input/; upload your own start image there. CLIP Vision\n"
    "Encode and WanImageToVideo turn it into the conditioning and the 832×480, 33-frame video\n"
    "latent. 30 steps, uni_pc / simple, cfg 6, ModelSamplingSD3 shift 8. The 14B model needs a\n"
    "large GPU; weight_dtype fp8_e4m3fn on Load Diffusion Model halves its memory.",
    "The video is saved as an animated WEBP: AdaptiveDiffusion/wan21_i2v_*.",
    WAN_RENAMES + "\nWanImageToVideo has an extra optional input (ref_pad_image) in newer ComfyUI; leave it empty.",
    height=800)


def wan21_i2v(wf: Workflow) -> None:
    models = wan_models(wf, WAN_I2V)
    vision = load(wf, "CLIPVisionLoader", CLIP_VISION_H, (0, 510))
    wf.group("Models", [*models.nodes, vision], GROUP_BLUE)
    image = wf.add("LoadImage", (0, 700), [START_IMAGE, "image"], title="Start image")
    encoded = wf.wire(wf.add("CLIPVisionEncode", (0, 1130), ["none"]), clip_vision=vision.out("CLIP_VISION"),
                      image=image.out("IMAGE"))
    wf.group("Start image", [image, encoded], GROUP_BROWN)
    prompts = encode(wf, models.clip, WAN_I2V_PROMPT, (480, 0))
    to_video = wf.wire(wf.add("WanImageToVideo", (480, 440), WAN_VIDEO), positive=prompts.positive,
                       negative=prompts.negative, vae=models.vae,
                       clip_vision_output=encoded.out("CLIP_VISION_OUTPUT"), start_image=image.out("IMAGE"))
    wf.group("Prompt and video size", [*prompts.nodes, to_video], GROUP_PURPLE)
    inputs = SamplerInputs(models.model, to_video.out("positive"), to_video.out("negative"), to_video.out("latent"))
    adaptive = adaptive_ksampler(wf, (960, 0), WAN_SAMPLING, inputs, threshold=0.008)
    adaptive_output(wf, adaptive, models.vae, "AdaptiveDiffusion/wan21_i2v",
                    "AdaptiveDiffusion (δ = 0.008): sample, save the animation, skip mask and stats",
                    "SaveAnimatedWEBP")


# --- the graphs of 2026's models (ComfyUI 0.33.0's templates' settings, speed 2x) ---------------

NEWEST_RENAMES = ""


def flow_models(wf: Workflow, unet: ModelFile, text_encoder: ModelFile, clip_type: str, vae_file: ModelFile,
                sampling_type: str, shift: float) -> Models:
    """A diffusion model through its ModelSampling node (the template's shift), text encoder and VAE, at x = 0."""
    model = load(wf, "UNETLoader", unet, (0, 0), "default")
    clip = load(wf, "CLIPLoader", text_encoder, (0, 130), clip_type, "default")
    vae = load(wf, "VAELoader", vae_file, (0, 290))
    sampling = wf.wire(wf.add(sampling_type, (0, 400), [shift]), model=model.out("MODEL"))
    return Models([model, clip, vae, sampling], sampling.out("MODEL"), clip.out("CLIP"), vae.out("VAE"))


@dataclass
class Experts:
    """Wan 2.2 14B's two experts (each through ModelSamplingSD3), its text encoder and VAE, at x = 0."""
    nodes: list[Node]
    high: Port
    low: Port
    clip: Port
    vae: Port


def wan22_experts(wf: Workflow, high_file: ModelFile, low_file: ModelFile) -> Experts:
    high = load(wf, "UNETLoader", high_file, (0, 0), "default", title="Load Diffusion Model (high noise)")
    low = load(wf, "UNETLoader", low_file, (0, 130), "default", title="Load Diffusion Model (low noise)")
    clip = load(wf, "CLIPLoader", UMT5, (0, 260), "wan", "default")
    vae = load(wf, "VAELoader", WAN22_VAE, (0, 420))
    high_shift = wf.wire(wf.add("ModelSamplingSD3", (0, 530), [WAN22_SHIFT], title="ModelSamplingSD3 (high noise)"),
                         model=high.out("MODEL"))
    low_shift = wf.wire(wf.add("ModelSamplingSD3", (0, 640), [WAN22_SHIFT], title="ModelSamplingSD3 (low noise)"),
                        model=low.out("MODEL"))
    return Experts([high, low, clip, vae, high_shift, low_shift], high_shift.out("MODEL"), low_shift.out("MODEL"),
                   clip.out("CLIP"), vae.out("VAE"))


def wan22_stages(wf: Workflow, experts: Experts, positive: Port, negative: Port, latent: Port, at_y: float,
                 prefix: str) -> None:
    """The two experts' Adaptive KSampler (Advanced) nodes over one 20-step schedule (steps and switch from
    two Int nodes), side by side, then decode, save and the skip mask of both."""
    steps = int_input(wf, (480, at_y), WAN22_SAMPLING.steps, "Steps (both experts)")
    switch = int_input(wf, (480, at_y + 130), WAN22_SWITCH, "Low-noise expert starts at step")
    wf.group("Schedule", [steps, switch], GROUP_PURPLE)
    high = adaptive_stage(wf, (960, 0), WAN22_SAMPLING, (0, WAN22_SWITCH),
                          SamplerInputs(experts.high, positive, negative, latent),
                          "Adaptive KSampler (Advanced): high-noise expert", speed=SPEED)
    low = adaptive_stage(wf, (high.right(), 0), WAN22_SAMPLING, (WAN22_SWITCH, 10000),
                         SamplerInputs(experts.low, positive, negative, high.out("LATENT")),
                         "Adaptive KSampler (Advanced): low-noise expert", speed=SPEED)
    outputs = decode_and_save(wf, low, experts.vae, prefix, "SaveAnimatedWEBP")
    views = trace_views(wf, [high, low], (outputs[-1].right(), 0), "high noise, low noise")
    wf.group(f"AdaptiveDiffusion {SPEED}: both experts planned as one schedule, the animation, skip masks",
             [high, low, *outputs, *views], GROUP_GREEN)
    wf.wire(high, steps=steps.out("INT"), end_at_step=switch.out("INT"))
    wf.wire(low, steps=steps.out("INT"), start_at_step=switch.out("INT"))


WAN22_PLAN = f"""\
Wan 2.2 14B splits the schedule between two experts: the high-noise model computes steps 0-{WAN22_SWITCH}
and returns its latent with the leftover noise, the low-noise model continues from step {WAN22_SWITCH} to
{WAN22_SAMPLING.steps} without adding noise. Both are Adaptive KSampler (Advanced) nodes at speed {SPEED}:
two such nodes over one schedule plan it as one, so the pair makes about half of the
{WAN22_SAMPLING.steps} calls in all (not {SPEED} of each half separately); the low-noise expert's first
2 steps (its own velocity's first points) are always computed. Steps and the switch come from the two Int
nodes, so both nodes always share them. Settings of ComfyUI {NEWEST_VERSION}'s template without its
4-step LoRA: {WAN22_SAMPLING.steps} steps, {WAN22_SAMPLING.sampler} / {WAN22_SAMPLING.scheduler},
cfg {WAN22_SAMPLING.cfg}, ModelSamplingSD3 shift {WAN22_SHIFT:g} on both experts,
{WAN22_VIDEO[0]}×{WAN22_VIDEO[1]}, {WAN22_VIDEO[2]} frames (5 s at 16 fps). The fp8 models need a
24 GB GPU or more."""

WAN22_T2V_README = ReadMe(
    "Wan 2.2 14B text-to-video: two experts, Adaptive KSampler (Advanced) at speed 2x",
    WAN22_PLAN + "\nThe video latent comes from the core EmptyHunyuanLatentVideo node (length 4k + 1 frames).",
    "The video is saved as an animated WEBP: AdaptiveDiffusion/wan22_t2v_*. (The template saves mp4 "
    "with Create Video + Save Video; both work.)", NEWEST_RENAMES, height=900, newest_only=True)

WAN22_T2V_PROMPT = Prompt("a red fox trotting through fresh snow in a pine forest, soft morning light, the camera "
                          "tracks alongside, cinematic", WAN_NEGATIVE, 150)


def wan22_t2v(wf: Workflow) -> None:
    experts = wan22_experts(wf, WAN22_T2V_HIGH, WAN22_T2V_LOW)
    wf.group("Models: the two experts, text encoder, VAE", experts.nodes, GROUP_BLUE)
    prompts = encode(wf, experts.clip, WAN22_T2V_PROMPT, (480, 0))
    latent = wf.add("EmptyHunyuanLatentVideo", (480, 440), WAN22_VIDEO,
                    title="Empty video latent (EmptyHunyuanLatentVideo)")
    wf.group("Prompt and video size", [*prompts.nodes, latent], GROUP_PURPLE)
    wan22_stages(wf, experts, prompts.positive, prompts.negative, latent.out("LATENT"), 680,
                 "AdaptiveDiffusion/wan22_t2v")


WAN22_I2V_README = ReadMe(
    "Wan 2.2 14B image-to-video: two experts, Adaptive KSampler (Advanced) at speed 2x",
    WAN22_PLAN + "\nLoad Image starts with example.png, which ships in ComfyUI/input/; upload your own start\n"
    "image there. WanImageToVideo turns it and the prompts into the conditioning and the video latent\n"
    "(Wan 2.2 needs no CLIP Vision).",
    "The video is saved as an animated WEBP: AdaptiveDiffusion/wan22_i2v_*. (The template saves mp4 "
    "with Create Video + Save Video; both work.)", NEWEST_RENAMES, height=940, newest_only=True)


def wan22_i2v(wf: Workflow) -> None:
    experts = wan22_experts(wf, WAN22_I2V_HIGH, WAN22_I2V_LOW)
    wf.group("Models: the two experts, text encoder, VAE", experts.nodes, GROUP_BLUE)
    image = wf.add("LoadImage", (0, 830), [START_IMAGE, "image"], title="Start image")
    wf.group("Start image", [image], GROUP_BROWN)
    prompts = encode(wf, experts.clip, WAN_I2V_PROMPT, (480, 0))
    to_video = wf.wire(wf.add("WanImageToVideo", (480, 440), WAN22_VIDEO), positive=prompts.positive,
                       negative=prompts.negative, vae=experts.vae, start_image=image.out("IMAGE"))
    wf.group("Prompt and video size", [*prompts.nodes, to_video], GROUP_PURPLE)
    wan22_stages(wf, experts, to_video.out("positive"), to_video.out("negative"), to_video.out("latent"), 760,
                 "AdaptiveDiffusion/wan22_i2v")


QWEN_PROMPT = Prompt('a rain-washed neon street in Hong Kong in the afternoon, shop signs reading "AdaptiveDiffusion" '
                     'and "快一倍" glow in pink and blue, reflections on the pavement, cinematic photograph', "", 120)

QWEN_README = ReadMe(
    "Qwen-Image text-to-image with the Adaptive KSampler at speed 2x",
    f"Settings of ComfyUI {NEWEST_VERSION}'s Qwen-Image template without its Lightning LoRA:\n"
    f"{QWEN_SAMPLING.steps} steps, {QWEN_SAMPLING.sampler} / {QWEN_SAMPLING.scheduler}, cfg {QWEN_SAMPLING.cfg:g},\n"
    f"ModelSamplingAuraFlow shift {QWEN_SHIFT}, 1328×1328 (EmptySD3LatentImage), an empty negative prompt.\n"
    "At speed 2x the Adaptive KSampler makes about 10 of the 20 model calls. Qwen-Image renders text\n"
    "in the picture well; the fp8 model needs a 24 GB GPU or more.",
    "The image is saved as AdaptiveDiffusion/qwen_image_*.", NEWEST_RENAMES, newest_only=True)


def single_sampler_image(wf: Workflow, models: Models, prompt: Prompt, latent_type: str, size: list,
                         sampling: Sampling, prefix: str) -> None:
    """The text-to-image layout of one Adaptive KSampler: models at x = 0, prompt and size, sampler, output."""
    wf.group("Models", models.nodes, GROUP_BLUE)
    prompts = encode(wf, models.clip, prompt, (480, 0))
    latent = wf.add(latent_type, (480, 440), size)
    wf.group("Prompt and image size", [*prompts.nodes, latent], GROUP_PURPLE)
    inputs = SamplerInputs(models.model, prompts.positive, prompts.negative, latent.out("LATENT"))
    adaptive = adaptive_ksampler(wf, (960, 0), sampling, inputs, speed=SPEED)
    adaptive_output(wf, adaptive, models.vae, prefix,
                    f"AdaptiveDiffusion {SPEED}: Adaptive KSampler, its skip mask and stats")


def qwen_image(wf: Workflow) -> None:
    models = flow_models(wf, QWEN_IMAGE, QWEN_VL, "qwen_image", QWEN_VAE, "ModelSamplingAuraFlow", QWEN_SHIFT)
    single_sampler_image(wf, models, QWEN_PROMPT, "EmptySD3LatentImage", [1328, 1328, 1], QWEN_SAMPLING,
                         "AdaptiveDiffusion/qwen_image")


Z_IMAGE_PROMPT = Prompt("a fashion photograph in a surreal meadow of pale blue plants under a clear sky, low angle, "
                        "a model in a flowing white dress walks through them, soft daylight", "", 120)

Z_IMAGE_README = ReadMe(
    "Z-Image text-to-image with the Adaptive KSampler at speed 2x",
    f"Settings of ComfyUI {NEWEST_VERSION}'s Z-Image (base) template: {Z_IMAGE_SAMPLING.steps} steps,\n"
    f"{Z_IMAGE_SAMPLING.sampler} / {Z_IMAGE_SAMPLING.scheduler}, cfg {Z_IMAGE_SAMPLING.cfg:g}, ModelSamplingAuraFlow\n"
    f"shift {Z_IMAGE_SHIFT:g}, 1024×1024 (EmptySD3LatentImage), an empty negative prompt. At speed 2x the\n"
    "Adaptive KSampler makes about 13 of the 25 model calls. Z-Image-Turbo (8 steps, cfg 1) runs too,\n"
    "with z_image_turbo_bf16.safetensors in Load Diffusion Model, 8 steps and cfg 1: 8 steps leave room\n"
    "for about 2 skips, and the node's summary says so.",
    "The image is saved as AdaptiveDiffusion/z_image_*.", NEWEST_RENAMES, newest_only=True)


def z_image(wf: Workflow) -> None:
    models = flow_models(wf, Z_IMAGE, QWEN3_4B, "lumina2", FLUX_AE, "ModelSamplingAuraFlow", Z_IMAGE_SHIFT)
    single_sampler_image(wf, models, Z_IMAGE_PROMPT, "EmptySD3LatentImage", [1024, 1024, 1], Z_IMAGE_SAMPLING,
                         "AdaptiveDiffusion/z_image")


FLUX2_PROMPT = "high fashion street photograph, vintage couture, neo-brutalist architecture, pastel paint, soft light"

FLUX2_README = ReadMe(
    "Flux.2 Dev text-to-image: AdaptiveDiffusion (model patch) into SamplerCustomAdvanced, speed 2x",
    f"The graph of ComfyUI {NEWEST_VERSION}'s Flux.2 Dev template without its Turbo LoRA: Random Noise,\n"
    f"Basic Guider with Flux Guidance {FLUX2_GUIDANCE:g}, KSamplerSelect {FLUX2_SAMPLER}, Flux2Scheduler\n"
    f"({FLUX2_STEPS} steps at 1024×1024), EmptyFlux2LatentImage, SamplerCustomAdvanced. The\n"
    "AdaptiveDiffusion (model patch) node sits between Load Diffusion Model and the guider: any sampler\n"
    "node that takes a MODEL gets the skipping. At speed 2x the sampler makes about 10 of the 20 model\n"
    "calls; its node shows the live skip mask and the run's summary (the log has it too). Keep the\n"
    "Flux2Scheduler's width and height equal to the latent's.",
    "The image is saved as AdaptiveDiffusion/flux2_dev_*.", NEWEST_RENAMES, height=820, newest_only=True)


def flux2_dev(wf: Workflow) -> None:
    unet = load(wf, "UNETLoader", FLUX2_DEV, (0, 0), "default")
    clip = load(wf, "CLIPLoader", FLUX2_MISTRAL, (0, 130), "flux2", "default")
    vae = load(wf, "VAELoader", FLUX2_VAE, (0, 290))
    wf.group("Models", [unet, clip, vae], GROUP_BLUE)
    patch = wf.wire(wf.add("AdaptiveDiffusionPatch", (0, 480), adaptive_widgets(speed=SPEED), colors=BLUE),
                    model=unet.out("MODEL"))
    wf.group(f"AdaptiveDiffusion {SPEED} on the model", [patch], GROUP_GREEN)
    positive = wf.wire(wf.add("CLIPTextEncode", (480, 0), [FLUX2_PROMPT], title="Positive prompt", colors=GREEN),
                       clip=clip.out("CLIP"))
    guidance = wf.wire(wf.add("FluxGuidance", (480, 230), [FLUX2_GUIDANCE]), conditioning=positive.out("CONDITIONING"))
    guider = wf.wire(wf.add("BasicGuider", (480, 330)), model=patch.out("MODEL"),
                     conditioning=guidance.out("CONDITIONING"))
    wf.group("Prompt and guider", [positive, guidance, guider], GROUP_PURPLE)
    noise = wf.add("RandomNoise", (960, 0), [SEED, "fixed"])
    select = wf.add("KSamplerSelect", (960, 130), [FLUX2_SAMPLER])
    sigmas = wf.add("Flux2Scheduler", (960, 230), [FLUX2_STEPS, 1024, 1024])
    latent = wf.add("EmptyFlux2LatentImage", (960, 380), [1024, 1024, 1])
    wf.group("Noise, sampler, schedule, size", [noise, select, sigmas, latent], GROUP_BROWN)
    custom = wf.wire(wf.add("SamplerCustomAdvanced", (1460, 0)), noise=noise.out("NOISE"), guider=guider.out("GUIDER"),
                     sampler=select.out("SAMPLER"), sigmas=sigmas.out("SIGMAS"), latent_image=latent.out("LATENT"))
    decode = wf.wire(wf.add("VAEDecode", (1460, 200)), samples=custom.out("output"), vae=vae.out("VAE"))
    save = wf.wire(wf.add("SaveImage", (custom.right(), 0), ["AdaptiveDiffusion/flux2_dev"]), images=decode.out("IMAGE"))
    wf.group("Sample (live skip mask on the node), decode, save", [custom, decode, save], GROUP_GREEN)


H3_PROMPT = ("The scene in the first frame comes to life: gentle natural motion, a slow camera push-in, soft "
             "daylight, the setting stays the same throughout.\nAudio: quiet ambient room tone, a light breeze, "
             "distant birdsong, no music, no speech.")

H3_VERSIONS = f"""\
Validated on ComfyUI {NEWEST_VERSION} (frontend 1.49), with the settings of its own template for this
model. ComfyUI {HOST_VERSION} has no MiniMax H3 nodes: update ComfyUI to run it."""

H3_README = ReadMe(
    "MiniMax H3 image-to-video with audio: AdaptiveDiffusion (model patch) into SamplerCustomAdvanced, speed 2x",
    f"The graph of ComfyUI {NEWEST_VERSION}'s MiniMax H3 image-to-video template (video_minimax_h3_i2v) without\n"
    "its Turbo LoRA: MiniMax H3 Image to Video takes the prompt (shots and sound in one text), the first\n"
    f"frame, {H3_VIDEO[0]}×{H3_VIDEO[1]} and {H3_VIDEO[2]} frames (5 s at {H3_FPS:g} fps; length is 17k + 5), "
    "Random Noise, Basic Guider (no negative prompt, cfg 1),\n"
    f"KSamplerSelect {H3_SAMPLER}, BasicScheduler {H3_SCHEDULER} {H3_STEPS} steps, SamplerCustomAdvanced. One "
    "latent holds the video and its stereo audio; VAE Decode and VAE Decode Audio take each from it.\n"
    "The AdaptiveDiffusion (model patch) node sits between Load Diffusion Model and the guider and\n"
    f"scheduler: at speed {SPEED} the sampler makes about 10 of the {H3_STEPS} model calls, for video and audio "
    "alike. The patch has no trace output, so there is no Skip Mask Preview here: SamplerCustomAdvanced\n"
    "shows the live skip mask and the run's summary on its node (the log has it too).\n"
    "Load Image starts with example.png, which ships in ComfyUI/input/ (the template's is\n"
    "transparent_rgb_gaming_mouse.png); upload your own first frame. H3's native canvas has a 768 px short\n"
    "edge (1344×768 for 16:9). The template's Turbo mode instead loads\n"
    "minimax_h3_fl2v_turbo_8step_v1.0_comfyui_bf16.safetensors (huggingface.co/lightx2v/Minimax-h3-Turbo)\n"
    "with Load LoRA (model only) and samples 8 steps; 8 steps leave room for few skips.",
    f"The video is saved as an animated WEBP at {H3_FPS:g} fps (AdaptiveDiffusion/minimax_h3_i2v_*) and the "
    "sound as FLAC (audio/AdaptiveDiffusion/minimax_h3_i2v_*; ComfyUI 0.33.0 lists Save Audio (FLAC) as "
    "deprecated, it still works). The template joins both into one mp4 with Create Video + Save Video.",
    NEWEST_RENAMES, height=1100, newest_only=True, versions=H3_VERSIONS)


def minimax_h3_i2v(wf: Workflow) -> None:
    unet = load(wf, "UNETLoader", H3_FL2VA, (0, 0), "default")
    clip = load(wf, "CLIPLoader", H3_QWEN3VL, (0, 130), "minimax", "default")
    video_vae = load(wf, "VAELoader", H3_VIDEO_VAE, (0, 290), title="Load VAE (video)")
    audio_vae = load(wf, "VAELoader", H3_AUDIO_VAE, (0, 400), title="Load VAE (audio)")
    wf.group("Models", [unet, clip, video_vae, audio_vae], GROUP_BLUE)
    patch = wf.wire(wf.add("AdaptiveDiffusionPatch", (0, 590), adaptive_widgets(speed=SPEED), colors=BLUE),
                    model=unet.out("MODEL"))
    wf.group(f"AdaptiveDiffusion {SPEED} on the model", [patch], GROUP_GREEN)
    image = wf.add("LoadImage", (480, 0), [START_IMAGE, "image"], title="First frame")
    to_video = wf.wire(wf.add("MiniMaxH3ImageToVideo", (480, 500), [H3_PROMPT, *H3_VIDEO], colors=GREEN),
                       clip=clip.out("CLIP"), vae=video_vae.out("VAE"), first_frame=image.out("IMAGE"))
    wf.group("First frame, prompt, size and length", [image, to_video], GROUP_PURPLE)
    noise = wf.add("RandomNoise", (960, 0), [SEED, "fixed"])
    select = wf.add("KSamplerSelect", (960, 130), [H3_SAMPLER])
    sigmas = wf.wire(wf.add("BasicScheduler", (960, 230), [H3_SCHEDULER, H3_STEPS, 1.0]), model=patch.out("MODEL"))
    guider = wf.wire(wf.add("BasicGuider", (960, 380)), model=patch.out("MODEL"),
                     conditioning=to_video.out("positive"))
    wf.group("Noise, sampler, schedule, guider", [noise, select, sigmas, guider], GROUP_BROWN)
    custom = wf.wire(wf.add("SamplerCustomAdvanced", (1460, 0)), noise=noise.out("NOISE"), guider=guider.out("GUIDER"),
                     sampler=select.out("SAMPLER"), sigmas=sigmas.out("SIGMAS"),
                     latent_image=to_video.out("LATENT"))
    decode = wf.wire(wf.add("VAEDecode", (1460, 200)), samples=custom.out("output"), vae=video_vae.out("VAE"))
    decode_audio = wf.wire(wf.add("VAEDecodeAudio", (1460, 300)), samples=custom.out("output"),
                           vae=audio_vae.out("VAE"))
    save = wf.wire(wf.add("SaveAnimatedWEBP", (custom.right(), 0),
                          ["AdaptiveDiffusion/minimax_h3_i2v", H3_FPS, False, 90, "default"]),
                   images=decode.out("IMAGE"))
    save_audio = wf.wire(wf.add("SaveAudio", (custom.right(), 580), ["audio/AdaptiveDiffusion/minimax_h3_i2v"]),
                         audio=decode_audio.out("AUDIO"))
    wf.group("Sample (live skip mask on the node), decode and save the video and its audio",
             [custom, decode, decode_audio, save, save_audio], GROUP_GREEN)


@dataclass(frozen=True)
class Graph:
    name: str  # the file name without .json; it also derives the workflow's id
    readme: ReadMe
    build: Callable[[Workflow], None]

    def workflow(self) -> Workflow:
        wf = Workflow(self.name, NEWEST_VERSION if self.readme.newest_only else HOST_VERSION)
        # The Note is node 1 (it comes first in the file and on the canvas, top left); its text
        # needs the model files, known once the graph is built.
        note = wf.add("Note", (-560, -80), size=(520, self.readme.height), title="Read me: models and settings",
                      colors=YELLOW)
        self.build(wf)
        note.widgets.append(self.readme.text(wf.model_files()))
        return wf


GRAPHS = (
    Graph("sdxl_adaptive_txt2img", SDXL_TXT2IMG_README, sdxl_txt2img),
    Graph("sdxl_adaptive_base_refiner", SDXL_BASE_REFINER_README, sdxl_base_refiner),
    Graph("wan21_adaptive_t2v", WAN21_T2V_README, wan21_t2v),
    Graph("wan21_adaptive_i2v", WAN21_I2V_README, wan21_i2v),
    Graph("wan22_adaptive_t2v", WAN22_T2V_README, wan22_t2v),
    Graph("wan22_adaptive_i2v", WAN22_I2V_README, wan22_i2v),
    Graph("qwen_image_adaptive", QWEN_README, qwen_image),
    Graph("flux2_dev_adaptive_patch", FLUX2_README, flux2_dev),
    Graph("z_image_adaptive", Z_IMAGE_README, z_image),
    Graph("minimax_h3_adaptive_i2v", H3_README, minimax_h3_i2v),
)


def render_all() -> dict[str, str]:
    """{file name: JSON text} of every example workflow."""
    return {f"{graph.name}.json": json.dumps(graph.workflow().to_json(), indent=2, ensure_ascii=False) + "\n"
            for graph in GRAPHS}


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
