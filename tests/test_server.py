"""End to end through a real ComfyUI server on 127.0.0.1: /object_info, /prompt, /history."""
from __future__ import annotations

import json

import pytest

from devtools.comfy_server import running_server
from devtools.graphs import ADAPTIVE, adaptive_graph, ksampler_graph, patch_custom_sampler_graph

OUR_NODES = ("AdaptiveKSampler", "AdaptiveKSamplerAdvanced", "AdaptiveDiffusionPatch")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("server")) as instance:
        yield instance


def stats(outputs: dict, node: str = "11") -> tuple:
    ui = outputs[node]
    return tuple(ui["shape"]), ui["sum"][0], ui["abs_sum"][0]


def test_pack_loads_without_import_failures(server):
    # ComfyUI lists every custom node folder with its import time, "(IMPORT FAILED)" when it failed.
    lines = [line for line in server.log().splitlines() if "custom_nodes/ComfyUI-AdaptiveDiffusion" in line]
    assert lines and all("IMPORT FAILED" not in line for line in lines), lines


def test_object_info_lists_our_nodes_with_core_inputs_in_order_and_tooltips(server):
    info = server.get("/object_info")
    for name in OUR_NODES:
        assert name in info, name
    core = list(info["KSampler"]["input"]["required"])
    ours = info["AdaptiveKSampler"]["input"]["required"]
    assert list(ours)[:len(core)] == core
    assert list(ours)[len(core):] == list(ADAPTIVE)
    for name in OUR_NODES:
        for input_name, spec in info[name]["input"]["required"].items():
            assert spec[1].get("tooltip"), f"{name}.{input_name} has no tooltip"
    assert info["AdaptiveKSampler"]["output"] == ["LATENT", "ADAPTIVE_TRACE"]
    assert info["AdaptiveKSampler"]["display_name"] == "Adaptive KSampler"
    advanced_core = list(info["KSamplerAdvanced"]["input"]["required"])
    assert list(info["AdaptiveKSamplerAdvanced"]["input"]["required"])[:len(advanced_core)] == advanced_core


# ComfyUI caches node outputs between prompts: every test uses its own seeds so nodes run again.

def test_adaptive_ksampler_runs_through_the_server(server):
    outputs = server.run(adaptive_graph(seed=101))
    mask = outputs["10"]["adaptive_mask"][0]
    assert len(mask) == 12 and "0" in mask and mask.startswith("1111")
    assert outputs["10"]["adaptive_summary"][0].startswith("AdaptiveDiffusion: computed")
    assert stats(outputs)[0] == (1, 4, 8, 8)
    assert "AdaptiveDiffusion: computed" in server.log()


def test_threshold_zero_matches_core_ksampler_through_the_server(server):
    adaptive = stats(server.run(adaptive_graph(threshold=0.0, seed=102)))
    core = stats(server.run(ksampler_graph(seed=102)))
    assert adaptive == core


def test_patch_with_sampler_custom_advanced_matches_adaptive_ksampler(server):
    custom = server.run(patch_custom_sampler_graph(seed=103))
    direct = server.run(adaptive_graph(seed=103))
    assert stats(custom) == stats(direct)


def test_two_adaptive_samplers_in_one_graph_are_independent(server):
    graph = adaptive_graph(threshold=0.5, seed=104)
    graph["12"] = {"class_type": "AdaptiveKSampler",
                   "inputs": {**graph["10"]["inputs"], "threshold": 0.0}}
    graph["13"] = {"class_type": "AdaptiveTestLatentStats", "inputs": {"samples": ["12", 0]}}
    outputs = server.run(graph)
    assert "0" in outputs["10"]["adaptive_mask"][0]
    assert set(outputs["12"]["adaptive_mask"][0]) == {"1"}
    assert stats(outputs, "13") == stats(server.run(ksampler_graph(seed=104)))


def test_video_model_through_the_server(server):
    outputs = server.run(adaptive_graph(kind="wan_t2v", batch=2, seed=105))
    assert tuple(outputs["11"]["shape"]) == (2, 16, 3, 8, 8)
    assert "0" in outputs["10"]["adaptive_mask"][0]


@pytest.mark.parametrize("field,value", [("threshold", -1.0), ("max_skip_steps", 0), ("warmup_steps", 2),
                                         ("keep_last_steps", -1), ("noise_reuse", "cubic"), ("steps", 0)])
def test_bad_inputs_are_rejected_by_validation_naming_the_input(server, field, value):
    status, body = server.post("/prompt", {"prompt": adaptive_graph(**{field: value})})
    assert status == 400
    errors = body["node_errors"]["10"]["errors"]
    assert any(field in (error.get("details", "") + error.get("message", "")) for error in errors), errors
    assert server.get("/system_stats")  # still serving


def test_save_and_replay_a_skip_path_through_the_server(server):
    graph = adaptive_graph(seed=106)
    graph["20"] = {"class_type": "AdaptiveSkipPathSave", "inputs": {"trace": ["10", 1], "filename_prefix": "e2e/path"}}
    outputs = server.run(graph)
    saved = outputs["20"]["skip_paths"][0]
    name = f"{saved['subfolder']}/{saved['filename']} [output]"  # loaded from the output folder, no copy
    (server.base_dir / "input" / "workflow.json").write_text("{}")  # a JSON that is not a skip path
    spec = server.get("/object_info/AdaptiveSkipPathLoad")["AdaptiveSkipPathLoad"]["input"]["required"]["path"]
    listed = spec[0] if isinstance(spec[0], list) else spec[1]["options"]  # V1 combo, or newer "COMBO"
    assert name in listed and "workflow.json" not in listed
    replay = adaptive_graph(seed=107, threshold=0.0001)
    replay["20"] = {"class_type": "AdaptiveSkipPathLoad", "inputs": {"path": name}}
    replay["10"]["inputs"]["skip_path"] = ["20", 0]
    replayed = server.run(replay)
    assert replayed["10"]["adaptive_mask"][0] == outputs["10"]["adaptive_mask"][0]
    assert "0" in replayed["10"]["adaptive_mask"][0]
    (server.base_dir / "input" / "broken.json").write_text("{")
    broken = adaptive_graph(seed=108)
    broken["20"] = {"class_type": "AdaptiveSkipPathLoad", "inputs": {"path": "broken.json"}}
    broken["10"]["inputs"]["skip_path"] = ["20", 0]
    status, body = server.post("/prompt", {"prompt": broken})
    assert status == 400 and "not a JSON" in json.dumps(body["node_errors"])
