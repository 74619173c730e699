"""The example workflows in workflows/: UI-format files that a user drags into ComfyUI, checked
against a real ComfyUI server (/object_info, /prompt, /history, /workflow_templates) and loaded in
the real frontend (headless chromium).

No model weights: the server's base directory gets placeholder files with the model names the
workflows promise, so validation sees them and execution then fails on loading the first one.
One server and one browser for the module. Screenshots go to artifacts/browser/ (git-ignored).
"""
from __future__ import annotations

import copy
import importlib.util
import json
import os
import sys
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from devtools.browser import ARTIFACTS, ComfyPage, chromium_context
from devtools.comfy_server import PACK_NAME, ComfyServer
from devtools.workflow_tools import (
    FRONTEND_ONLY_TYPES,
    backend_nodes,
    input_specs,
    link_problems,
    read_workflow,
    socket_problems,
    structure_problems,
    to_api,
    widget_problems,
    widget_values,
)

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / "workflows"
REGISTRY_NAME = "comfyui-adaptive-diffusion"  # pyproject's [project] name: the cnr_id in our nodes

# What the issue promises, written out here (not read from the workflows): the model files each
# workflow needs, as (ComfyUI model folder, file name). The server gets exactly these placeholders.
SDXL_BASE = ("checkpoints", "sd_xl_base_1.0.safetensors")
UMT5 = ("text_encoders", "umt5_xxl_fp8_e4m3fn_scaled.safetensors")
WAN_VAE = ("vae", "wan_2.1_vae.safetensors")
MODEL_FILES = {
    "sdxl_adaptive_txt2img": {SDXL_BASE},
    "sdxl_adaptive_base_refiner": {SDXL_BASE, ("checkpoints", "sd_xl_refiner_1.0.safetensors")},
    "wan21_adaptive_t2v": {("diffusion_models", "wan2.1_t2v_1.3B_fp16.safetensors"), UMT5, WAN_VAE},
    "wan21_adaptive_i2v": {("diffusion_models", "wan2.1_i2v_480p_14B_fp16.safetensors"), UMT5, WAN_VAE,
                           ("clip_vision", "clip_vision_h.safetensors")},
    # The graphs of 2026's models, with the files of ComfyUI 0.33.0's own templates.
    "wan22_adaptive_t2v": {("diffusion_models", "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors"),
                           ("diffusion_models", "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors"), UMT5, WAN_VAE},
    "wan22_adaptive_i2v": {("diffusion_models", "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"),
                           ("diffusion_models", "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors"), UMT5, WAN_VAE},
    "qwen_image_adaptive": {("diffusion_models", "qwen_image_fp8_e4m3fn.safetensors"),
                            ("text_encoders", "qwen_2.5_vl_7b_fp8_scaled.safetensors"),
                            ("vae", "qwen_image_vae.safetensors")},
    "flux2_dev_adaptive_patch": {("diffusion_models", "flux2_dev_fp8mixed.safetensors"),
                                 ("text_encoders", "mistral_3_small_flux2_bf16.safetensors"),
                                 ("vae", "full_encoder_small_decoder.safetensors")},
    "z_image_adaptive": {("diffusion_models", "z_image_bf16.safetensors"), ("text_encoders", "qwen_3_4b.safetensors"),
                         ("vae", "ae.safetensors")},
    "minimax_h3_adaptive_i2v": {("diffusion_models", "minimax_h3_fl2va_pruned_int8_convrot.safetensors"),
                                ("text_encoders", "qwen3vl_32b_minimax_h3_nvfp4_awq.safetensors"),
                                ("vae", "minimax_h3_video_vae_fp16.safetensors"),
                                ("vae", "minimax_h3_audio_vae_fp32.safetensors")},
}
NAMES = sorted(MODEL_FILES)
# Made for ComfyUI 0.33.0 (its templates' settings, speed 2x): an older host that lacks one of their node
# types or loader types skips them (host_lacks); ComfyUI 0.3.75 has them all and runs every check, except
# MiniMax H3's (MiniMaxH3ImageToVideo, CLIPLoader type "minimax"), which it skips.
NEWEST_ONLY = {"wan22_adaptive_t2v", "wan22_adaptive_i2v", "qwen_image_adaptive", "flux2_dev_adaptive_patch",
               "z_image_adaptive", "minimax_h3_adaptive_i2v"}
START_IMAGE = "example.png"  # ships in ComfyUI's input/ folder; the I2V workflow starts from it
# Which loader input picks a file from which model folder.
LOADER_FOLDERS = {("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
                  ("UNETLoader", "unet_name"): "diffusion_models", ("CLIPLoader", "clip_name"): "text_encoders",
                  ("VAELoader", "vae_name"): "vae", ("CLIPVisionLoader", "clip_name"): "clip_vision"}
LOADERS = {node_type for node_type, _ in LOADER_FOLDERS}


def make_placeholders(base: Path) -> None:
    """Files with the promised names but no weights (loading one fails), and a real start image."""
    for folder, name in set().union(*MODEL_FILES.values()):
        path = base / "models" / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"placeholder: not a model\n")
    (base / "input").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), (40, 90, 160)).save(base / "input" / START_IMAGE)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("workflow-server")
    make_placeholders(base)  # before start, so the first /object_info already lists them
    instance = ComfyServer(base, os.environ["COMFYUI_DIR"]).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def info(server) -> dict:
    return server.get("/object_info")


def workflow(name: str) -> dict:
    return read_workflow(WORKFLOWS / f"{name}.json")


def api_nodes(name: str, info: dict, class_type: str) -> list[dict]:
    return [node for node in to_api(workflow(name), info).values() if node["class_type"] == class_type]


def host_lacks(name: str, info: dict) -> list[str]:
    """What the host's /object_info does not offer of a workflow: node types, and text encoder types of
    CLIPLoader (a model family newer than the host)."""
    nodes = list(backend_nodes(workflow(name)))
    lacking = sorted({node["type"] for node in nodes} - set(info))
    for node in nodes:
        if node["type"] == "CLIPLoader" and "CLIPLoader" in info:
            (spec,) = [s for s in input_specs(info, "CLIPLoader") if s.name == "type"]
            if node["widgets_values"][1] not in spec.choices:
                lacking.append(f"CLIPLoader type {node['widgets_values'][1]!r}")
    return lacking


def skip_on_an_older_host(name: str, info: dict) -> None:
    """A 0.33.0 workflow on a host without its nodes is skipped, by this check of the node list; any
    other workflow, or a host that has them, runs every check."""
    if name in NEWEST_ONLY and (lacking := host_lacks(name, info)):
        pytest.skip(f"{name} needs ComfyUI 0.33.0's nodes; this host lacks {', '.join(lacking)}")


# --- the files ----------------------------------------------------------------------------------

def test_the_folder_holds_exactly_the_workflows_the_builder_writes(monkeypatch):
    spec = importlib.util.spec_from_file_location("build_workflows", WORKFLOWS / "build_workflows.py")
    builder = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, builder)  # dataclasses look their module up there
    spec.loader.exec_module(builder)
    rendered = builder.render_all()
    assert sorted(path.name for path in WORKFLOWS.glob("*.json")) == sorted(rendered) == [f"{n}.json" for n in NAMES]
    for file_name, text in rendered.items():
        assert (WORKFLOWS / file_name).read_text(encoding="utf-8") == text, (
            f"{file_name} differs from what workflows/build_workflows.py writes: run it")


@pytest.mark.parametrize("name", NAMES)
def test_workflow_is_ui_format(name):
    data = workflow(name)
    assert structure_problems(data) == []
    assert any(node["type"] == "Note" for node in data["nodes"])
    assert data["groups"], "the nodes are arranged in titled groups"


@pytest.mark.parametrize("name", NAMES)
def test_every_node_type_exists_on_the_server(name, info):
    skip_on_an_older_host(name, info)
    types = {node["type"] for node in workflow(name)["nodes"]}
    assert types - FRONTEND_ONLY_TYPES <= set(info), sorted(types - FRONTEND_ONLY_TYPES - set(info))
    ours = {t for t in types if t.startswith("Adaptive")}
    assert ours and all(info[t]["python_module"].startswith(f"custom_nodes.{PACK_NAME}") for t in ours)
    core = types - ours - FRONTEND_ONLY_TYPES
    assert all(not info[t]["python_module"].startswith("custom_nodes") for t in core), "only core nodes besides ours"


@pytest.mark.parametrize("name", NAMES)
def test_links_join_outputs_and_inputs_of_the_same_type(name, info):
    skip_on_an_older_host(name, info)
    data = workflow(name)
    assert link_problems(data, info) == []
    assert socket_problems(data, info) == []


@pytest.mark.parametrize("name", NAMES)
def test_widget_values_are_legal_for_their_inputs(name, info):
    skip_on_an_older_host(name, info)
    assert widget_problems(workflow(name), info) == []


@pytest.mark.parametrize("name", NAMES)
def test_loaders_pick_the_promised_model_files(name, info):
    skip_on_an_older_host(name, info)
    used = set()
    for node in backend_nodes(workflow(name)):
        values = widget_values(node, input_specs(info, node["type"]))
        used |= {(folder, values[field]) for (node_type, field), folder in LOADER_FOLDERS.items()
                 if node_type == node["type"]}
        if node["type"] in LOADERS:  # the frontend's missing-model check and download links
            assert {(m["directory"], m["name"]) for m in node["properties"]["models"]} <= MODEL_FILES[name]
            assert all(m["url"].startswith("https://huggingface.co/") for m in node["properties"]["models"])
    assert used == MODEL_FILES[name]


@pytest.mark.parametrize("name", NAMES)
def test_note_says_where_each_model_goes_and_what_the_settings_do(name):
    notes = [node["widgets_values"][0] for node in workflow(name)["nodes"] if node["type"] == "Note"]
    text = "\n".join(notes)
    for folder, file_name in MODEL_FILES[name]:
        assert f"ComfyUI/models/{folder}/{file_name}" in text
    for words in ("threshold (δ)", "max_skip_steps (Cmax)", "0 turns skipping off", "ComfyUI 0.33.0", "ComfyUI 0.3.75"):
        assert words in text
    if name in NEWEST_ONLY:
        assert "Validated on ComfyUI 0.33.0" in text and "its own template" in text and "speed 2x" in text


def first_node(data: dict, node_type: str) -> dict:
    return next(node for node in data["nodes"] if node["type"] == node_type)


def drop_control_mode(data: dict) -> None:
    del first_node(data, "AdaptiveKSampler")["widgets_values"][1]  # "fixed" after the seed


def bad_video_length(data: dict) -> None:
    first_node(data, "EmptyHunyuanLatentVideo")["widgets_values"][2] = 32  # Wan needs 4k + 1 frames


def unknown_sampler(data: dict) -> None:
    first_node(data, "AdaptiveKSampler")["widgets_values"][4] = "euler_fast"


def wrong_link_type(data: dict) -> None:
    link = next(link for link in data["links"] if link[5] == "CONDITIONING")
    link[5] = "IMAGE"


def renamed_input(data: dict) -> None:
    first_node(data, "VAEDecode")["inputs"][0]["name"] = "latent"


def unplugged_model(data: dict) -> None:
    first_node(data, "AdaptiveKSampler")["inputs"][0]["link"] = None


@pytest.mark.parametrize("break_it,complaint", [
    (drop_control_mode, "must be followed by its control_after_generate mode"),
    (bad_video_length, "32 is not min 1 + a multiple of step 4"),
    (unknown_sampler, "'euler_fast' is not one of"),
    (wrong_link_type, "vs link type IMAGE"),
    (renamed_input, "has no input 'latent'"),
    (unplugged_model, "required input model is not connected")])
def test_the_checks_catch_a_broken_workflow(break_it, complaint, info):
    data = copy.deepcopy(workflow("wan21_adaptive_t2v"))
    break_it(data)
    problems = link_problems(data, info) + socket_problems(data, info) + widget_problems(data, info)
    assert any(complaint in problem for problem in problems), problems


def test_txt2img_compares_adaptive_and_core_ksampler_on_the_same_seed(info):
    (adaptive,) = api_nodes("sdxl_adaptive_txt2img", info, "AdaptiveKSampler")
    (core,) = api_nodes("sdxl_adaptive_txt2img", info, "KSampler")
    (latent,) = api_nodes("sdxl_adaptive_txt2img", info, "EmptyLatentImage")
    assert latent["inputs"] == {"width": 1024, "height": 1024, "batch_size": 1}
    shared = ("model", "seed", "steps", "cfg", "sampler_name", "scheduler", "positive", "negative",
              "latent_image", "denoise")
    assert {k: adaptive["inputs"][k] for k in shared} == {k: core["inputs"][k] for k in shared}
    prompt = to_api(workflow("sdxl_adaptive_txt2img"), info)
    steps_node = prompt[adaptive["inputs"]["steps"][0]]
    assert steps_node["inputs"]["value"] == 50 and adaptive["inputs"]["threshold"] == 0.01
    for view in ("AdaptiveSkipMaskPreview", "AdaptiveSkipStats"):
        (node,) = api_nodes("sdxl_adaptive_txt2img", info, view)
        assert prompt[node["inputs"]["trace"][0]]["class_type"] == "AdaptiveKSampler"


def test_base_refiner_runs_both_stages_adaptive_with_leftover_noise(info):
    prompt = to_api(workflow("sdxl_adaptive_base_refiner"), info)
    stages = [node for node in prompt.values() if node["class_type"] == "AdaptiveKSamplerAdvanced"]
    base, refiner = sorted(stages, key=lambda node: node["inputs"]["add_noise"] != "enable")

    def value(ref: list) -> int:
        return prompt[ref[0]]["inputs"]["value"]  # the Int node behind a link
    assert (base["inputs"]["add_noise"], base["inputs"]["return_with_leftover_noise"]) == ("enable", "enable")
    assert (refiner["inputs"]["add_noise"], refiner["inputs"]["return_with_leftover_noise"]) == ("disable", "disable")
    assert base["inputs"]["start_at_step"] == 0 and value(base["inputs"]["end_at_step"]) == 40
    assert value(refiner["inputs"]["start_at_step"]) == 40 and refiner["inputs"]["end_at_step"] >= 50
    assert value(base["inputs"]["steps"]) == value(refiner["inputs"]["steps"]) == 50
    assert prompt[refiner["inputs"]["latent_image"][0]] is base
    (preview,) = [node for node in prompt.values() if node["class_type"] == "AdaptiveSkipMaskPreview"]
    assert [prompt[preview["inputs"][k][0]] for k in ("trace", "trace_2")] == [base, refiner]
    stats = [prompt[n["inputs"]["trace"][0]] for n in prompt.values() if n["class_type"] == "AdaptiveSkipStats"]
    assert len(stats) == 2 and base in stats and refiner in stats


@pytest.mark.parametrize("name,threshold,latent_type", [("wan21_adaptive_t2v", 0.01, "EmptyHunyuanLatentVideo"),
                                                         ("wan21_adaptive_i2v", 0.008, "WanImageToVideo")])
def test_wan_workflows_sample_video_latents_and_save_an_animation(name, threshold, latent_type, info):
    prompt = to_api(workflow(name), info)
    (sampler,) = [node for node in prompt.values() if node["class_type"] == "AdaptiveKSampler"]
    assert sampler["inputs"]["threshold"] == threshold
    assert prompt[sampler["inputs"]["latent_image"][0]]["class_type"] == latent_type
    (clip,) = [node for node in prompt.values() if node["class_type"] == "CLIPLoader"]
    assert clip["inputs"]["type"] == "wan"
    (save,) = [node for node in prompt.values() if node["class_type"] == "SaveAnimatedWEBP"]
    decode = prompt[save["inputs"]["images"][0]]
    assert prompt[decode["inputs"]["samples"][0]] is sampler


@pytest.mark.parametrize("name", ["wan22_adaptive_t2v", "wan22_adaptive_i2v"])
def test_wan22_runs_both_experts_as_one_schedule_at_speed_2x(name, info):
    # ComfyUI 0.33.0's Wan 2.2 14B templates without the 4-step LoRA: 20 steps, the low-noise
    # expert from step 10, euler / simple, cfg 3.5, ModelSamplingSD3 shift 5 on both experts.
    skip_on_an_older_host(name, info)
    prompt = to_api(workflow(name), info)
    stages = [node for node in prompt.values() if node["class_type"] == "AdaptiveKSamplerAdvanced"]
    high, low = sorted(stages, key=lambda node: node["inputs"]["add_noise"] != "enable")

    def value(ref) -> int:
        return prompt[ref[0]]["inputs"]["value"] if isinstance(ref, list) else ref
    assert (high["inputs"]["return_with_leftover_noise"], low["inputs"]["add_noise"],
            low["inputs"]["return_with_leftover_noise"]) == ("enable", "disable", "disable")
    assert value(high["inputs"]["steps"]) == value(low["inputs"]["steps"]) == 20
    assert value(high["inputs"]["start_at_step"]) == 0
    assert value(high["inputs"]["end_at_step"]) == value(low["inputs"]["start_at_step"]) == 10
    assert value(low["inputs"]["end_at_step"]) >= 20
    assert prompt[low["inputs"]["latent_image"][0]] is high
    for stage, expert in ((high, "high_noise"), (low, "low_noise")):
        assert {k: stage["inputs"][k] for k in ("cfg", "sampler_name", "scheduler", "speed")} == {
            "cfg": 3.5, "sampler_name": "euler", "scheduler": "simple", "speed": "2x"}
        shift = prompt[stage["inputs"]["model"][0]]
        assert shift["class_type"] == "ModelSamplingSD3" and shift["inputs"]["shift"] == 5.0
        assert expert in prompt[shift["inputs"]["model"][0]]["inputs"]["unet_name"]
    latent = prompt[high["inputs"]["latent_image"][0]]
    assert latent["class_type"] == ("WanImageToVideo" if name.endswith("i2v") else "EmptyHunyuanLatentVideo")
    assert [latent["inputs"][k] for k in ("width", "height", "length")] == [640, 640, 81]
    (preview,) = [node for node in prompt.values() if node["class_type"] == "AdaptiveSkipMaskPreview"]
    assert [prompt[preview["inputs"][k][0]] for k in ("trace", "trace_2")] == [high, low]


@pytest.mark.parametrize("name,settings,sampling,shift,size", [
    ("qwen_image_adaptive", {"steps": 20, "cfg": 4.0, "sampler_name": "euler", "scheduler": "simple"},
     "ModelSamplingAuraFlow", 3.1, 1328),
    ("z_image_adaptive", {"steps": 25, "cfg": 4.0, "sampler_name": "res_multistep", "scheduler": "simple"},
     "ModelSamplingAuraFlow", 3.0, 1024)])
def test_image_models_use_their_templates_settings_at_speed_2x(name, settings, sampling, shift, size, info):
    skip_on_an_older_host(name, info)
    prompt = to_api(workflow(name), info)
    (sampler,) = [node for node in prompt.values() if node["class_type"] == "AdaptiveKSampler"]
    assert {k: sampler["inputs"][k] for k in settings} == settings and sampler["inputs"]["speed"] == "2x"
    model = prompt[sampler["inputs"]["model"][0]]
    assert model["class_type"] == sampling and model["inputs"]["shift"] == shift
    latent = prompt[sampler["inputs"]["latent_image"][0]]
    assert latent["class_type"] == "EmptySD3LatentImage"
    assert (latent["inputs"]["width"], latent["inputs"]["height"]) == (size, size)


def test_flux2_patches_the_model_into_sampler_custom_advanced(info):
    # ComfyUI 0.33.0's Flux.2 Dev template without its Turbo LoRA: Flux2Scheduler 20 steps at 1024²,
    # euler, Flux Guidance 4, Basic Guider, Random Noise.
    skip_on_an_older_host("flux2_dev_adaptive_patch", info)
    prompt = to_api(workflow("flux2_dev_adaptive_patch"), info)
    (custom,) = [node for node in prompt.values() if node["class_type"] == "SamplerCustomAdvanced"]
    guider = prompt[custom["inputs"]["guider"][0]]
    patch = prompt[guider["inputs"]["model"][0]]
    assert patch["class_type"] == "AdaptiveDiffusionPatch" and patch["inputs"]["speed"] == "2x"
    assert prompt[patch["inputs"]["model"][0]]["class_type"] == "UNETLoader"
    guidance = prompt[guider["inputs"]["conditioning"][0]]
    assert guidance["class_type"] == "FluxGuidance" and guidance["inputs"]["guidance"] == 4.0
    sigmas = prompt[custom["inputs"]["sigmas"][0]]
    assert sigmas["class_type"] == "Flux2Scheduler" and sigmas["inputs"] == {"steps": 20, "width": 1024,
                                                                               "height": 1024}
    assert prompt[custom["inputs"]["sampler"][0]]["inputs"]["sampler_name"] == "euler"
    assert prompt[custom["inputs"]["noise"][0]]["class_type"] == "RandomNoise"
    latent = prompt[custom["inputs"]["latent_image"][0]]
    assert latent["class_type"] == "EmptyFlux2LatentImage" and latent["inputs"]["width"] == 1024


def test_minimax_h3_patches_the_model_and_saves_video_and_audio(info):
    # ComfyUI 0.33.0's MiniMax H3 image-to-video template without its Turbo LoRA: MiniMaxH3ImageToVideo
    # 640×640 (its Resolution Selector at 1:1, 0.4 MP), 124 frames (5 s at 24 fps), Basic Guider, Random
    # Noise, KSamplerSelect res_multistep, BasicScheduler simple 20 steps; the video and the audio VAE.
    name = "minimax_h3_adaptive_i2v"
    skip_on_an_older_host(name, info)
    prompt = to_api(workflow(name), info)
    (custom,) = [node for node in prompt.values() if node["class_type"] == "SamplerCustomAdvanced"]
    guider = prompt[custom["inputs"]["guider"][0]]
    assert guider["class_type"] == "BasicGuider"
    patch = prompt[guider["inputs"]["model"][0]]
    assert patch["class_type"] == "AdaptiveDiffusionPatch" and patch["inputs"]["speed"] == "2x"
    unet = prompt[patch["inputs"]["model"][0]]
    assert unet["inputs"]["unet_name"] == "minimax_h3_fl2va_pruned_int8_convrot.safetensors"
    sigmas = prompt[custom["inputs"]["sigmas"][0]]
    assert sigmas["class_type"] == "BasicScheduler" and prompt[sigmas["inputs"]["model"][0]] is patch
    assert {k: sigmas["inputs"][k] for k in ("scheduler", "steps", "denoise")} == {
        "scheduler": "simple", "steps": 20, "denoise": 1.0}
    assert prompt[custom["inputs"]["sampler"][0]]["inputs"]["sampler_name"] == "res_multistep"
    assert prompt[custom["inputs"]["noise"][0]]["class_type"] == "RandomNoise"
    to_video = prompt[custom["inputs"]["latent_image"][0]]
    assert to_video["class_type"] == "MiniMaxH3ImageToVideo" and custom["inputs"]["latent_image"][1] == 1
    assert prompt[guider["inputs"]["conditioning"][0]] is to_video
    assert [to_video["inputs"][k] for k in ("width", "height", "length")] == [640, 640, 124]
    assert prompt[to_video["inputs"]["first_frame"][0]]["class_type"] == "LoadImage"
    assert "last_frame" not in to_video["inputs"]
    clip = prompt[to_video["inputs"]["clip"][0]]
    assert clip["class_type"] == "CLIPLoader" and clip["inputs"]["type"] == "minimax"
    video_vae = prompt[to_video["inputs"]["vae"][0]]
    assert video_vae["inputs"]["vae_name"] == "minimax_h3_video_vae_fp16.safetensors"
    (save,) = [node for node in prompt.values() if node["class_type"] == "SaveAnimatedWEBP"]
    assert save["inputs"]["fps"] == 24.0
    decode = prompt[save["inputs"]["images"][0]]
    assert decode["class_type"] == "VAEDecode" and prompt[decode["inputs"]["samples"][0]] is custom
    assert prompt[decode["inputs"]["vae"][0]] is video_vae
    (save_audio,) = [node for node in prompt.values() if node["class_type"] == "SaveAudio"]
    decode_audio = prompt[save_audio["inputs"]["audio"][0]]
    assert decode_audio["class_type"] == "VAEDecodeAudio" and prompt[decode_audio["inputs"]["samples"][0]] is custom
    assert prompt[decode_audio["inputs"]["vae"][0]]["inputs"]["vae_name"] == "minimax_h3_audio_vae_fp32.safetensors"


# --- the server -----------------------------------------------------------------------------

def execution_error(entry: dict) -> dict | None:
    return next((data for kind, data in entry["status"]["messages"] if kind == "execution_error"), None)


@pytest.mark.parametrize("name", NAMES)
def test_server_accepts_the_workflow_and_fails_only_on_loading_a_placeholder(name, server, info):
    skip_on_an_older_host(name, info)
    prompt = to_api(workflow(name), info)
    status, body = server.post("/prompt", {"prompt": prompt, "client_id": "workflow-tests"})
    assert status == 200 and body.get("node_errors") == {}, json.dumps(body)[:3000]
    entry = server.wait(body["prompt_id"])  # the server is idle again afterwards
    assert entry["status"]["status_str"] == "error", "placeholders cannot load as models"
    error = execution_error(entry)
    assert error is not None, entry["status"]["messages"]
    assert error["node_type"] in LOADERS and prompt[error["node_id"]]["class_type"] == error["node_type"]
    assert "load_torch_file" in "".join(error["traceback"]), error  # reading the file, not validation


def test_server_rejects_the_workflow_without_the_model_file(server, info):
    # The check above can fail: a model name that is not on disk is a validation error.
    prompt = to_api(workflow("sdxl_adaptive_txt2img"), info)
    loader = next(key for key, node in prompt.items() if node["class_type"] == "CheckpointLoaderSimple")
    prompt[loader]["inputs"]["ckpt_name"] = "sd_xl_base_0.9.safetensors"
    status, body = server.post("/prompt", {"prompt": prompt, "client_id": "workflow-tests"})
    assert status == 400 and loader in body["node_errors"]


def test_template_list_names_the_pack_workflows_and_serves_them(server):
    templates = server.get("/workflow_templates")
    assert sorted(templates[PACK_NAME]) == NAMES
    for name in NAMES:  # the address the frontend's template browser loads a workflow from
        with urllib.request.urlopen(f"{server.url}/api/workflow_templates/{PACK_NAME}/{name}.json") as response:
            assert json.loads(response.read()) == workflow(name)


# --- the frontend ---------------------------------------------------------------------------

LOAD_TEMPLATE = """async ([pack, name]) => {
    const response = await fetch(`/api/workflow_templates/${pack}/${name}.json`);
    await app.loadGraphData(await response.json(), true, true, name);
}"""

# After a load: nodes whose type the frontend does not know (it keeps them as red placeholders),
# every node's size and widget values as the frontend holds them, its links, and its own prompt.
READ_GRAPH = """async () => {
    const nodes = app.graph.nodes;
    const serialized = app.graph.serialize();
    return {
        missing: nodes.filter((n) => !(n.type in LiteGraph.registered_node_types) || n.has_errors).map((n) => n.type),
        sizes: Object.fromEntries(nodes.map((n) => [n.id, [n.size[0], n.size[1]]])),
        widgets: Object.fromEntries(serialized.nodes.map((n) => [n.id, n.widgets_values ?? []])),
        links: serialized.links.map((l) => [l[1], l[2], l[3], serialized.nodes.find((n) => n.id === l[3])
                                            .inputs[l[4]].name, l[5]]),
        prompt: (await app.graphToPrompt()).output,
    };
}"""

VISIBLE_TOASTS = "() => [...document.querySelectorAll('.p-toast-message')].map((t) => t.innerText)"

# Zoom and pan so that every node and group lies in the canvas area that the frontend's side bar,
# tab bar, run toolbar and zoom controls leave free (margins in page pixels: left, top, right, bottom).
SHOW_WHOLE_GRAPH = """([left, top, right, bottom]) => {
    const boxes = [...app.graph.nodes.map((n) => [n.pos[0], n.pos[1] - 30, n.size[0], n.size[1] + 30]),
                   ...app.graph.groups.map((g) => [...g._bounding ?? g.bounding])];
    const x0 = Math.min(...boxes.map((b) => b[0])), y0 = Math.min(...boxes.map((b) => b[1]));
    const x1 = Math.max(...boxes.map((b) => b[0] + b[2])), y1 = Math.max(...boxes.map((b) => b[1] + b[3]));
    const rect = app.canvas.canvas.getBoundingClientRect();
    const scale = Math.min((rect.width - left - right) / (x1 - x0), (rect.height - top - bottom) / (y1 - y0));
    app.canvas.ds.scale = scale;
    app.canvas.ds.offset = [left / scale - x0, top / scale - y0];
    app.graph.setDirtyCanvas(true, true);
}"""
SCREEN_MARGINS = [70, 90, 20, 70]


@pytest.fixture(scope="module")
def frontend(server):
    with chromium_context(viewport={"width": 1920, "height": 1200}) as context:
        yield ComfyPage(context.new_page(), server.url).open()


def load_template(page: ComfyPage, name: str) -> dict:
    page.evaluate(LOAD_TEMPLATE, [PACK_NAME, name])
    page.page.wait_for_timeout(300)  # dialogs and toasts are opened after the graph is configured
    return page.evaluate(READ_GRAPH)


def without_titles(prompt: dict) -> dict:
    return {key: {"class_type": node["class_type"], "inputs": node["inputs"]} for key, node in prompt.items()}


# Inputs appended after these files were saved, and the value the frontend gives an older node
# (js/adaptive_inputs.js): what the file meant when it was saved.
APPENDED_SINCE_SAVED = {"AdaptiveKSampler": {"speed": "threshold (δ)"},
                        "AdaptiveKSamplerAdvanced": {"speed": "threshold (δ)"},
                        "AdaptiveDiffusionPatch": {"speed": "threshold (δ)"}}


def appended(node: dict) -> dict:
    """The appended inputs a node of the file lacks: a file saved before `speed` ends its values with
    per_sample (a boolean); the files of 2026's models end them with the speed they ask for."""
    missing = APPENDED_SINCE_SAVED.get(node["type"], {})
    return missing if missing and isinstance(node["widgets_values"][-1], bool) else {}


def as_loaded(data: dict) -> dict:
    """The file's widget values as the frontend holds them: appended inputs at their old meaning."""
    return {str(node["id"]): node["widgets_values"] + list(appended(node).values()) for node in data["nodes"]}


def as_queued(data: dict, info: dict) -> dict:
    prompt = to_api(data, info)
    for node in data["nodes"]:
        prompt[str(node["id"])]["inputs"].update(appended(node)) if str(node["id"]) in prompt else None
    return prompt


def file_links(data: dict) -> list[list]:
    nodes = {node["id"]: node for node in data["nodes"]}
    return sorted([origin, slot, target, nodes[target]["inputs"][target_slot]["name"], kind]
                  for _, origin, slot, target, target_slot, kind in data["links"])


@pytest.mark.parametrize("name", NAMES)
def test_frontend_loads_the_workflow_with_no_node_or_model_missing(name, frontend, info):
    skip_on_an_older_host(name, info)
    errors_before = len(frontend.errors)
    graph = load_template(frontend, name)
    data = workflow(name)
    assert graph["missing"] == []
    assert frontend.visible_dialog_texts() == []  # no missing nodes / missing models dialog
    assert frontend.evaluate(VISIBLE_TOASTS) == []  # no workflow validation warning
    # The frontend asks api.comfy.org about the node packs named in cnr_id; offline that is blocked.
    assert [e for e in frontend.errors[errors_before:] if "https://api.comfy.org/" not in e] == []
    # The frontend read every widget value into the widget it belongs to and kept every link ...
    assert graph["widgets"] == as_loaded(data)
    assert sorted(graph["links"]) == file_links(data)
    # ... did not have to enlarge a node (the file's layout is what the user sees) ...
    assert graph["sizes"] == {str(node["id"]): node["size"] for node in data["nodes"]}
    # ... and queues exactly the prompt our conversion gives (titles aside: the frontend's
    # translated display names arrive asynchronously, and the server ignores _meta).
    assert without_titles(graph["prompt"]) == without_titles(as_queued(data, info))
    frontend.evaluate(SHOW_WHOLE_GRAPH, SCREEN_MARGINS)
    frontend.page.wait_for_timeout(300)  # the next frame draws the new view
    frontend.screenshot(ARTIFACTS / f"workflow_{name}.png")  # README shows the SDXL one


def test_frontend_reports_a_missing_node_type(frontend):
    # The checks above can fail: a node type that no pack registers is reported.
    data = copy.deepcopy(workflow("sdxl_adaptive_txt2img"))
    next(node for node in data["nodes"] if node["type"] == "AdaptiveSkipStats")["type"] = "AdaptiveSkipStatsGone"
    frontend.load_workflow(data)
    frontend.page.wait_for_timeout(300)
    missing = frontend.evaluate(READ_GRAPH)["missing"]
    report = frontend.problem_report_texts()
    frontend.page.keyboard.press("Escape")
    assert missing == ["AdaptiveSkipStatsGone"]
    # Frontend 1.32 names the node type in a dialog; 1.49 names the node's pack (its cnr_id).
    assert any("AdaptiveSkipStatsGone" in text or REGISTRY_NAME in text for text in report), report
