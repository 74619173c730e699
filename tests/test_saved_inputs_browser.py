"""Saved workflows keep their meaning after `speed` was appended: in the real frontend (headless
chromium on a real ComfyUI server, js/adaptive_inputs.js) and for API prompts on the server.

The older workflows in workflows/ were saved before `speed` existed: their Adaptive nodes must load
with every saved value in place and speed "threshold (δ)"; the newer ones were saved with a speed
and keep it; a newly placed node gets the new default.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.browser import ComfyPage, chromium_context
from devtools.comfy_server import running_server
from devtools.graphs import adaptive_graph

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
SAMPLERS = ("AdaptiveKSampler", "AdaptiveKSamplerAdvanced", "AdaptiveDiffusionPatch")
BEFORE_SPEED = "threshold (δ)"
SPEEDS = (BEFORE_SPEED, "1.25x", "1.5x", "1.75x", "2x", "2.5x", "3x")

# Every Adaptive node: its type and the value of each widget, by name, in order.
WIDGETS_SCRIPT = """() => (app.graph.nodes ?? app.graph._nodes)
    .filter((node) => %s.includes(node.comfyClass))
    .map((node) => ({ id: node.id, type: node.comfyClass,
                      values: node.serialize().widgets_values,
                      widgets: node.widgets.map((w) => [w.name, w.value]) }))""" % json.dumps(list(SAMPLERS))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("server")) as instance:
        yield instance


@pytest.fixture(scope="module")
def page(server):
    with chromium_context() as context:  # raises ChromiumMissing when chromium is not installed
        yield ComfyPage(context.new_page(), server.url).open()


def adaptive_widgets(page: ComfyPage) -> list[dict]:
    return page.evaluate(WIDGETS_SCRIPT)


def test_the_server_offers_speed_after_every_existing_input(server):
    info = server.get("/object_info")
    for name in SAMPLERS:
        optional = list(info[name]["input"]["optional"])
        assert optional == ["skip_path", "speed"], name
        choices, options = info[name]["input"]["optional"]["speed"]
        assert choices == [BEFORE_SPEED, "1.25x", "1.5x", "1.75x", "2x", "2.5x", "3x"] and options["default"] == "2x"
        assert options["tooltip"]
        assert info[name]["input_order"]["optional"] == ["skip_path", "speed"]


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.json")))
def test_a_saved_workflow_loads_its_values_and_its_speed(page, name):
    saved = json.loads((WORKFLOWS / name).read_text())
    page.load_workflow(saved)
    # Frontend 1.49 may hand back node ids as strings ("6"), 1.32 as numbers.
    loaded = {int(node["id"]): node for node in adaptive_widgets(page)}
    old_nodes = [node for node in saved["nodes"] if node["type"] in SAMPLERS]
    assert old_nodes and set(loaded) == {int(node["id"]) for node in old_nodes}
    for node in old_nodes:
        values, saved_values = loaded[int(node["id"])]["values"], node["widgets_values"]
        # saved before `speed` existed: it loads as threshold (δ); saved with a speed: it keeps it
        speed = saved_values[-1] if saved_values[-1] in SPEEDS else BEFORE_SPEED
        expected = saved_values if saved_values[-1] in SPEEDS else saved_values + [BEFORE_SPEED]
        assert values == expected, node["id"]
        assert dict(loaded[int(node["id"])]["widgets"])["speed"] == speed
    # No script error (the console's 404s are model previews and images this server lacks).
    assert [e for e in page.errors if e.startswith("pageerror")] == []


def test_a_new_node_gets_the_new_default_and_a_saved_speed_is_kept(page):
    page.evaluate("""async () => {
        app.graph.clear();
        const node = LiteGraph.createNode("AdaptiveKSampler");
        app.graph.add(node);
        const patch = LiteGraph.createNode("AdaptiveDiffusionPatch");
        app.graph.add(patch);
        patch.widgets.find((w) => w.name === "speed").value = "1.5x";
    }""")
    placed = {node["type"]: dict(node["widgets"]) for node in adaptive_widgets(page)}
    assert placed["AdaptiveKSampler"]["speed"] == "2x"
    assert placed["AdaptiveDiffusionPatch"]["speed"] == "1.5x"
    page.evaluate("async () => { await app.loadGraphData(app.graph.serialize()); }")
    reloaded = {node["type"]: dict(node["widgets"]) for node in adaptive_widgets(page)}
    assert reloaded == placed


def test_an_api_prompt_without_speed_runs_as_threshold(server):
    # The same prompt without speed and with speed "threshold (δ)": the same skip mask; "2x" differs.
    masks = {}
    for speed in (None, BEFORE_SPEED, "2x"):
        graph = adaptive_graph(seed=3, steps=16)
        graph["10"]["inputs"]["threshold"] = 0.01
        if speed is not None:
            graph["10"]["inputs"]["speed"] = speed
        masks[speed] = server.run(graph)["10"]["adaptive_mask"][0]
    assert masks[None] == masks[BEFORE_SPEED]
    assert masks["2x"] != masks[BEFORE_SPEED] and masks["2x"].count("0") >= 5
