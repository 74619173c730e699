"""Hardening on a real ComfyUI server (127.0.0.1): interruption and failures mid-sampling, a queue
soak, several samplers per graph, graph changes between prompts, bad input, other packs.

Two servers: `server` takes the abuse; `reference` only ever runs prompts one at a time and is
never interrupted, so "the same prompt on a fresh server" is a prompt run there. Seeds differ
between tests because ComfyUI answers a node whose inputs did not change from its cache.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from devtools.comfy_server import ComfyServer, running_server
from devtools.graphs import ADAPTIVE, SAMPLING, fixture_inputs
from devtools.queue_soak import (WARM_PROMPTS, custom_sampler_nodes, latent_result, live_adaptive_runs,
                           mismatches, run_alone, run_queued, soak_prompts)

CI_SOAK_PROMPTS = 40  # bench/soak.py runs the full 200
RSS_SLACK_BYTES = 64 * 1024 * 1024
SUMMARY = "AdaptiveDiffusion: computed"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("hardened")) as instance:
        yield instance


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("reference")) as instance:
        yield instance


# -- graph pieces ----------------------------------------------------------------------------

def sampling(seed: int, **overrides) -> dict:
    return {**SAMPLING, "seed": seed, "positive": ["2", 0], "negative": ["3", 0],
            "latent_image": ["4", 0], **overrides}


def adaptive_sampler(model: list, seed: int, **overrides) -> dict:
    return {"class_type": "AdaptiveKSampler",
            "inputs": {"model": model, **sampling(seed), **ADAPTIVE, **overrides}}


def core_sampler(model: list, seed: int, **overrides) -> dict:
    return {"class_type": "KSampler", "inputs": {"model": model, **sampling(seed, **overrides)}}


def stats(source: str) -> dict:
    return {"class_type": "AdaptiveTestLatentStats", "inputs": {"samples": [source, 0]}}


def single_sampler_graph(sampler: dict, model_nodes: dict | None = None, kind: str = "sd15",
                         batch: int = 1, size: int = 8) -> dict:
    """Fixture nodes 1-4, optional model nodes (5...), the sampler as node 10, stats as 11."""
    return {**fixture_inputs(kind, batch, size), **(model_nodes or {}), "10": sampler, "11": stats("10")}


def mask(outputs: dict, node: str = "10") -> str:
    return outputs[node]["adaptive_mask"][0]


def log_since(server: ComfyServer, offset: int) -> str:
    return server.log()[offset:]


def summaries(text: str) -> list[str]:
    return sorted(line[line.index(SUMMARY):] for line in text.splitlines() if SUMMARY in line)


# -- 1. interruption and failure mid-sampling ------------------------------------------------

def fault_graph(signal_dir: Path, seed: int) -> dict:
    graph = single_sampler_graph(adaptive_sampler(["5", 0], seed), {
        "5": {"class_type": "AdaptiveTestFaultInjector",
              "inputs": {"model": ["1", 0], "signal_dir": str(signal_dir), "at_call": 6}}})
    graph["12"] = {"class_type": "AdaptiveTestLiveRuns", "inputs": {"samples": ["10", 0], "tag": seed}}
    return graph


def wait_for_file(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear in {timeout}s")
        time.sleep(0.05)


def failure_messages(entry: dict) -> str:
    status = entry.get("status", {})
    assert status.get("status_str") == "error", status
    return json.dumps(status.get("messages"))


def assert_rerun_equals_fresh_server(server, reference, graph: dict) -> None:
    again = server.run(graph)
    fresh = reference.run(graph)
    assert latent_result(again) == latent_result(fresh)
    assert mask(again) == mask(fresh) and "0" in mask(fresh)
    assert again["12"]["adaptive_runs"] == [0]  # the broken run left nothing alive


def test_interrupt_mid_sampling_then_the_same_graph_equals_a_fresh_server(server, reference, tmp_path):
    graph = fault_graph(tmp_path, seed=301)
    (tmp_path / "interrupt").touch()
    prompt_id = server.queue(graph)
    wait_for_file(tmp_path / "paused")  # the 6th real model call is waiting: mid-sampling
    status, _ = server.post("/interrupt", {"prompt_id": prompt_id})
    assert status == 200
    assert "execution_interrupted" in failure_messages(server.wait(prompt_id))
    assert_rerun_equals_fresh_server(server, reference, graph)


def test_exception_inside_sampling_then_the_same_graph_equals_a_fresh_server(server, reference, tmp_path):
    graph = fault_graph(tmp_path, seed=302)
    (tmp_path / "raise").touch()
    messages = failure_messages(server.wait(server.queue(graph)))
    assert "InjectedFailure" in messages or "fault injected" in messages
    assert not (tmp_path / "raise").exists()  # the fault really fired inside sampling
    assert_rerun_equals_fresh_server(server, reference, graph)


# -- 2. queue soak ---------------------------------------------------------------------------

def test_queue_soak_matches_prompts_run_alone_and_memory_stays_flat(server, reference):
    prompts = soak_prompts(CI_SOAK_PROMPTS, seed=3)
    queued = run_queued(server, prompts)
    alone = run_alone(reference, prompts)
    assert not mismatches(queued.results, alone, prompts)
    assert {p.route for p in prompts} == {"adaptive", "patch_custom", "ksampler", "easycache"}
    assert len(queued.results) == CI_SOAK_PROMPTS > WARM_PROMPTS
    assert live_adaptive_runs(server, tag=303) == 0
    growth = queued.rss_end - queued.rss_after_warm
    assert growth <= max(RSS_SLACK_BYTES, 0.1 * queued.rss_after_warm), \
        f"server RSS grew by {growth / 2**20:.1f} MiB after the first {WARM_PROMPTS} prompts"


# -- 3. several samplers in one graph --------------------------------------------------------

def two_stage_graph(seed: int, first_stage: str, first_threshold: float = 0.5,
                    with_second_stage: bool = True) -> dict:
    """SDXL-style base (model 1) for steps 0-12 of 20, refiner (model 21) for steps 12-20."""
    graph = fixture_inputs("sdxl")
    common = {**sampling(seed), "steps": 20}
    common.pop("seed"), common.pop("denoise")
    base = {**common, "model": ["1", 0], "add_noise": "enable", "noise_seed": seed,
            "start_at_step": 0, "end_at_step": 12, "return_with_leftover_noise": "enable"}
    if first_stage == "adaptive":
        graph["10"] = {"class_type": "AdaptiveKSamplerAdvanced",
                       "inputs": {**base, **ADAPTIVE, "threshold": first_threshold}}
    else:
        graph["10"] = {"class_type": "KSamplerAdvanced", "inputs": base}
    graph["11"] = stats("10")
    if with_second_stage:
        graph["21"] = {"class_type": "AdaptiveTestTinyModel", "inputs": {"kind": "sdxl", "seed": 5}}
        graph["12"] = {"class_type": "AdaptiveKSamplerAdvanced", "inputs": {
            **common, **ADAPTIVE, "model": ["21", 0], "add_noise": "disable", "noise_seed": seed,
            "latent_image": ["10", 0], "start_at_step": 12, "end_at_step": 20,
            "return_with_leftover_noise": "disable"}}
        graph["13"] = stats("12")
    return graph


def test_base_and_refiner_adaptive_stages_keep_independent_runs(server, reference):
    # Stage 1 at δ=0 is bit-identical to the core node, so the refiner sees the same latent with
    # and without an Adaptive run before it: anything carried over would change stage 2.
    after_adaptive = server.run(two_stage_graph(311, "adaptive", first_threshold=0.0))
    after_core = reference.run(two_stage_graph(311, "core"))
    assert latent_result(after_adaptive, "11") == latent_result(after_core, "11")
    assert latent_result(after_adaptive, "13") == latent_result(after_core, "13")
    assert mask(after_adaptive, "12") == mask(after_core, "12")

    both = server.run(two_stage_graph(312, "adaptive"))
    base_alone = reference.run(two_stage_graph(312, "adaptive", with_second_stage=False))
    assert mask(both, "10") == mask(base_alone, "10") and "0" in mask(both, "10")
    assert latent_result(both, "11") == latent_result(base_alone, "11")
    second = mask(both, "12")  # its own 8 steps, its own warm-up
    assert len(second) == 8 and second.startswith("1" * ADAPTIVE["warmup_steps"])


def shared_patch_graph(seeds: tuple[int, int, int], which: tuple[str, ...] = ("a", "b", "c")) -> dict:
    """One AdaptiveDiffusionPatch (node 5) feeding KSampler a, KSampler b (heun) and
    SamplerCustomAdvanced c; stats 11, 13, 15."""
    graph = fixture_inputs("sd15")
    graph["5"] = {"class_type": "AdaptiveDiffusionPatch", "inputs": {"model": ["1", 0], **ADAPTIVE}}
    if "a" in which:
        graph["10"], graph["11"] = core_sampler(["5", 0], seeds[0]), stats("10")
    if "b" in which:
        graph["12"] = core_sampler(["5", 0], seeds[1], sampler_name="heun", steps=10)
        graph["13"] = stats("12")
    if "c" in which:
        custom = custom_sampler_nodes(sampling(seeds[2]), ADAPTIVE)
        graph.update({key: custom[key] for key in ("6", "7", "8", "9")})
        graph["14"], graph["15"] = custom["10"], stats("14")
    return graph


def test_one_patched_model_reused_by_three_sampler_nodes(server, reference):
    seeds = (321, 322, 323)
    offset = len(server.log())
    together = server.run(shared_patch_graph(seeds))
    together_summaries = summaries(log_since(server, offset))
    alone_summaries = []
    for which, node in (("a", "11"), ("b", "13"), ("c", "15")):
        offset = len(reference.log())
        alone = reference.run(shared_patch_graph(seeds, (which,)))
        alone_summaries += summaries(log_since(reference, offset))
        assert latent_result(together, node) == latent_result(alone, node), which
    assert len(together_summaries) == 3 and together_summaries == sorted(alone_summaries)
    assert any("skipped" in line and " 0 skipped" not in line for line in together_summaries)


# -- 4. graph-level changes between prompts --------------------------------------------------

CHANGES = [  # each prompt changes one thing from the one before
    dict(kind="sd15", steps=12, sampler_name="euler", size=8, batch=1),
    dict(kind="sd15", steps=20, sampler_name="euler", size=8, batch=1),
    dict(kind="sd15", steps=20, sampler_name="heun", size=8, batch=1),
    dict(kind="sd15", steps=20, sampler_name="heun", size=16, batch=1),
    dict(kind="sd15", steps=20, sampler_name="heun", size=16, batch=3),
    dict(kind="sdxl", steps=20, sampler_name="heun", size=16, batch=3),
    dict(kind="wan_t2v", steps=20, sampler_name="heun", size=16, batch=3),
    dict(kind="wan_i2v", steps=14, sampler_name="dpmpp_2m", size=8, batch=2),
    dict(kind="sd15", steps=7, sampler_name="euler", size=8, batch=2),
]


def changing_graph(kind: str, steps: int, sampler_name: str, size: int, batch: int, seed: int = 331) -> dict:
    """Adaptive KSampler (10 → 11) and the patch with SamplerCustomAdvanced (14 → 15) side by side."""
    graph = single_sampler_graph(adaptive_sampler(["1", 0], seed, steps=steps, sampler_name=sampler_name),
                                 kind=kind, batch=batch, size=size)
    custom = custom_sampler_nodes(sampling(seed + 1, steps=steps, sampler_name=sampler_name), ADAPTIVE)
    graph.update({key: custom[key] for key in ("5", "6", "7", "8", "9")})
    graph["14"], graph["15"] = custom["10"], stats("14")
    return graph


def test_steps_sampler_size_batch_and_model_change_between_prompts(server, reference):
    results = [server.run(changing_graph(**change)) for change in CHANGES]
    expected = [reference.run(changing_graph(**change)) for change in reversed(CHANGES)][::-1]
    for change, got, want in zip(CHANGES, results, expected):
        channels = 16 if change["kind"].startswith("wan") else 4
        assert got["11"]["shape"][:2] == [change["batch"], channels], change
        assert got["11"]["shape"][-1] == change["size"], change
        assert len(mask(got)) == change["steps"], change
        for node in ("11", "15"):
            assert latent_result(got, node) == latent_result(want, node), (change, node)
        assert mask(got) == mask(want), change


# -- 6. bad input through the API ------------------------------------------------------------

def adaptive_input_specs(server: ComfyServer) -> dict[str, list]:
    """The Adaptive inputs as the server describes them (the patch node's, less its model)."""
    specs = dict(server.get("/object_info/AdaptiveDiffusionPatch")["AdaptiveDiffusionPatch"]["input"]["required"])
    specs.pop("model")
    return specs


def bad_values(spec: list) -> list:
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    if isinstance(kind, list) or kind == "COMBO":
        return ["no-such-choice", 3]
    if kind in ("INT", "FLOAT"):
        values = ["not a number"]
        values += [options["min"] - 1] if "min" in options else []
        values += [options["max"] + 1] if "max" in options else []
        return values + ([math.nan] if kind == "FLOAT" else [])
    return []  # BOOLEAN: the host turns any value into True/False before a node sees it


def node_under_test(node_type: str, seed: int, **overrides) -> tuple[dict, str]:
    """A graph with the given Adaptive node and the id of that node."""
    if node_type == "AdaptiveKSampler":
        return single_sampler_graph(adaptive_sampler(["1", 0], seed, **overrides)), "10"
    if node_type == "AdaptiveKSamplerAdvanced":
        graph = two_stage_graph(seed, "adaptive", with_second_stage=False)
        graph["10"]["inputs"].update(overrides)
        return graph, "10"
    graph = single_sampler_graph(core_sampler(["5", 0], seed), {
        "5": {"class_type": "AdaptiveDiffusionPatch", "inputs": {"model": ["1", 0], **ADAPTIVE, **overrides}}})
    return graph, "5"


def rejection_text(server: ComfyServer, graph: dict, node: str) -> str:
    status, body = server.post("/prompt", {"prompt": graph})
    assert status == 400, body
    errors = body["node_errors"][node]["errors"]
    return " ".join(error.get("message", "") + " " + error.get("details", "") for error in errors)


ADAPTIVE_NODES = ("AdaptiveKSampler", "AdaptiveKSamplerAdvanced", "AdaptiveDiffusionPatch")


@pytest.mark.parametrize("node_type", ADAPTIVE_NODES)
def test_every_bad_adaptive_input_is_rejected_naming_the_input(server, node_type):
    specs = adaptive_input_specs(server)
    assert set(ADAPTIVE) <= set(specs)  # the graphs send every input the server lists
    checked = 0
    for name, spec in specs.items():
        for value in bad_values(spec):
            graph, node = node_under_test(node_type, 341, **{name: value})
            assert name in rejection_text(server, graph, node), (node_type, name, value)
            checked += 1
    if node_type != "AdaptiveDiffusionPatch":
        graph, node = node_under_test(node_type, 341, steps=0)
        assert "steps" in rejection_text(server, graph, node), node_type
        # A few-step (Turbo/LCM) graph is valid: it runs unskipped.
        assert server.run(node_under_test(node_type, 345, steps=ADAPTIVE["warmup_steps"] - 1)[0])
    assert checked >= 10
    assert server.run(node_under_test(node_type, 342)[0])  # and the server still samples


def test_bad_value_arriving_through_a_link_fails_the_node_naming_the_input(server):
    graph, node = node_under_test("AdaptiveKSampler", 343, threshold=["20", 0])
    graph["20"] = {"class_type": "PrimitiveFloat", "inputs": {"value": 5.0}}
    messages = failure_messages(server.wait(server.queue(graph)))
    assert "threshold" in messages
    assert server.run(node_under_test("AdaptiveKSampler", 344)[0])


# -- 7. other packs on the same model --------------------------------------------------------

def foreign_nodes(scale: float = 0.9) -> dict:
    return {"5": {"class_type": "AdaptiveTestForeignWrapper", "inputs": {"model": ["1", 0], "scale": scale}}}


def test_a_pre_existing_model_function_wrapper_is_chained(server, reference):
    with_ours_off = server.run(single_sampler_graph(adaptive_sampler(["5", 0], 351, threshold=0.0), foreign_nodes()))
    core = reference.run(single_sampler_graph(core_sampler(["5", 0], 351), foreign_nodes()))
    assert latent_result(with_ours_off) == latent_result(core)  # the other pack's wrapper still ran

    skipping = server.run(single_sampler_graph(adaptive_sampler(["5", 0], 352), foreign_nodes()))
    without_foreign = server.run(single_sampler_graph(adaptive_sampler(["1", 0], 352)))
    assert "0" in mask(skipping)
    assert latent_result(skipping) != latent_result(without_foreign)


CACHE_NODES = {"EasyCache": "easycache", "LazyCache": "lazycache"}


def cache_node(class_type: str, model: list) -> dict:
    return {"class_type": class_type, "inputs": {"model": model, "reuse_threshold": 0.2,
                                                 "start_percent": 0.15, "end_percent": 0.95,
                                                 "verbose": False}}


@pytest.mark.parametrize("cache", sorted(CACHE_NODES))
def test_core_step_caches_still_run_with_a_warning(server, reference, cache):
    offset = len(server.log())
    # ours off under the other cache: exactly the other cache's own result, and no warning
    off = server.run(single_sampler_graph(adaptive_sampler(["5", 0], 361, threshold=0.0),
                                          {"5": cache_node(cache, ["1", 0])}))
    core = reference.run(single_sampler_graph(core_sampler(["5", 0], 361), {"5": cache_node(cache, ["1", 0])}))
    assert latent_result(off) == latent_result(core)
    # both orders of stacking run to the end
    cache_first = server.run(single_sampler_graph(adaptive_sampler(["5", 0], 362), {"5": cache_node(cache, ["1", 0])}))
    ours_first = server.run(single_sampler_graph(core_sampler(["6", 0], 363), {
        "5": {"class_type": "AdaptiveDiffusionPatch", "inputs": {"model": ["1", 0], **ADAPTIVE}},
        "6": cache_node(cache, ["5", 0])}))
    for outputs in (cache_first, ours_first):
        assert math.isfinite(outputs["11"]["sum"][0]) and outputs["11"]["shape"] == [1, 4, 8, 8]
    warnings = [line for line in log_since(server, offset).splitlines() if "another step cache" in line]
    assert len(warnings) == 2 and all(CACHE_NODES[cache] in line for line in warnings), warnings


MODEL_SAMPLING = {
    "sd15": {"class_type": "ModelSamplingDiscrete", "inputs": {"sampling": "v_prediction", "zsnr": True}},
    "wan_t2v": {"class_type": "ModelSamplingSD3", "inputs": {"shift": 8.0}},
}


@pytest.mark.parametrize("kind", sorted(MODEL_SAMPLING))
def test_after_and_before_a_model_sampling_node(server, reference, kind):
    def sampling_node(model: list) -> dict:
        node = MODEL_SAMPLING[kind]
        return {"class_type": node["class_type"], "inputs": {"model": model, **node["inputs"]}}

    off = server.run(single_sampler_graph(adaptive_sampler(["5", 0], 371, threshold=0.0),
                                          {"5": sampling_node(["1", 0])}, kind=kind))
    core = reference.run(single_sampler_graph(core_sampler(["5", 0], 371), {"5": sampling_node(["1", 0])}, kind=kind))
    assert latent_result(off) == latent_result(core)
    # Patch → ModelSampling → KSampler equals ModelSampling → Adaptive KSampler: the order is free.
    sampling_last = server.run(single_sampler_graph(core_sampler(["6", 0], 372), {
        "5": {"class_type": "AdaptiveDiffusionPatch", "inputs": {"model": ["1", 0], **ADAPTIVE}},
        "6": sampling_node(["5", 0])}, kind=kind))
    sampling_first = reference.run(single_sampler_graph(adaptive_sampler(["5", 0], 372),
                                                        {"5": sampling_node(["1", 0])}, kind=kind))
    assert "0" in mask(sampling_first)
    assert latent_result(sampling_last) == latent_result(sampling_first)
