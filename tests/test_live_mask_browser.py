"""The skip mask in the real frontend: headless chromium on a real ComfyUI server (127.0.0.1).

One server and one browser for the module. Screenshots go to artifacts/browser/ (git-ignored).
A missing chromium is an error here, never a skip: `scripts/dev.py test` installs it.
"""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from devtools.browser import ARTIFACTS, ComfyPage, chromium_context
from devtools.comfy_server import ComfyServer, running_server
from devtools.graphs import adaptive_graph, patch_custom_sampler_graph

STEPS = 16
STATE_MARK = {"computed": "1", "skipped": "0", "pending": "."}
# Okabe-Ito blue / orange, as js/adaptive_mask.js and the mask picture draw them.
CELL_COLOURS = {"computed": "rgb(0, 114, 178)", "skipped": "rgb(230, 159, 0)"}


def visual_graph(seed: int) -> dict:
    """Adaptive KSampler (10) with Skip Mask Preview (12) and Skip Stats (13) on its trace, and
    the same sampling through AdaptiveDiffusionPatch + SamplerCustomAdvanced (20)."""
    graph = adaptive_graph(seed=seed, steps=STEPS)
    graph["12"] = {"class_type": "AdaptiveSkipMaskPreview", "inputs": {"trace": ["10", 1]}}
    graph["13"] = {"class_type": "AdaptiveSkipStats", "inputs": {"trace": ["10", 1]}}
    custom = patch_custom_sampler_graph(seed=seed)
    custom["9"]["inputs"]["steps"] = STEPS
    renumbered = {"5": "15", "6": "16", "7": "17", "8": "18", "9": "19", "10": "20", "11": "21"}
    for old, new in renumbered.items():
        node = custom[old]
        inputs = {name: [renumbered.get(value[0], value[0]), value[1]] if isinstance(value, list) else value
                  for name, value in node["inputs"].items()}
        graph[new] = {"class_type": node["class_type"], "inputs": inputs}
    return graph


# Canvas layout [x, y(, width, height)]: inputs on the left, the Adaptive KSampler with its
# preview and stats next to it, the patched custom-sampler chain below and on the right.
LAYOUT = {1: [0, 0], 2: [0, 160], 3: [0, 320], 4: [0, 480], 17: [0, 640], 18: [0, 780],
          10: [330, 0, 310, None], 15: [330, 660],
          12: [680, 0, 600, 440], 13: [680, 480, 600, 190], 11: [680, 720], 19: [680, 800],
          16: [1000, 720], 20: [1320, 0, 300, 250], 21: [1320, 320]}
README_VIEW = [10, 12, 13, 20]  # the nodes in the screenshot that README shows


@pytest.fixture(scope="module")
def chromium():
    with chromium_context() as context:  # raises ChromiumMissing when chromium is not installed
        yield context


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("server")) as instance:
        yield instance


def view_png(server: ComfyServer, entry: dict) -> Image.Image:
    """An image of a node's ui output, fetched the way the frontend shows it (/view)."""
    import urllib.request
    query = urllib.parse.urlencode({k: entry[k] for k in ("filename", "subfolder", "type")})
    with urllib.request.urlopen(f"{server.url}/view?{query}", timeout=30) as response:
        return Image.open(io.BytesIO(response.read()))


def test_preview_and_stats_nodes_through_the_server(server):
    info = server.get("/object_info")
    for name, display in (("AdaptiveSkipMaskPreview", "Skip Mask Preview"), ("AdaptiveSkipStats", "Skip Stats")):
        assert info[name]["display_name"] == display and info[name]["output_node"] is True
        assert info[name]["description"]
        for section in ("required", "optional"):
            for input_name, spec in info[name]["input"].get(section, {}).items():
                assert spec[1].get("tooltip"), f"{name}.{input_name} has no tooltip"
    graph = adaptive_graph(seed=201, steps=STEPS)
    graph["12"] = {"class_type": "AdaptiveSkipMaskPreview", "inputs": {"trace": ["10", 1]}}
    graph["13"] = {"class_type": "AdaptiveSkipStats", "inputs": {"trace": ["10", 1]}}
    outputs = server.run(graph)
    (image,) = outputs["12"]["images"]
    path = server.base_dir / image["type"] / image["subfolder"] / image["filename"]
    assert image["type"] == "temp" and path.is_file()
    with Image.open(path) as picture:
        picture.load()
        assert picture.format == "PNG" and picture.width >= 600 and picture.height >= 300
        size = picture.size
    assert view_png(server, image).size == size
    stats = outputs["13"]["text"][0].splitlines()
    mask = outputs["10"]["adaptive_mask"][0]
    assert stats[0] == outputs["10"]["adaptive_summary"][0]
    assert stats[1] == mask.replace("1", "■").replace("0", "□") and len(mask) == STEPS


# --- in the browser ---------------------------------------------------------------------------

RECORD_LIVE_STRIPS = """() => {
    window.adaptiveSnapshots = [];
    // Registered after the pack's own listener, so it sees the strip that event produced. The
    // strip is read from the node's widget: the frontend attaches a new widget's element to the
    // page on its next frame, after the first event.
    api.addEventListener("adaptive_diffusion.progress", ({ detail }) => {
        const widget = app.graph.getNodeById(detail.node)?.widgets?.find((w) => w.name === "adaptive_mask");
        const cells = widget ? [...widget.element.querySelectorAll(".adaptive-mask-cell")] : null;
        const shown = cells && cells.map((c) => c.dataset.state);
        window.adaptiveSnapshots.push({ node: String(detail.node), mask: detail.mask, done: detail.done, shown });
    });
}"""

READ_STRIP = """(nodeId) => {
    const strip = document.querySelector(`.adaptive-mask[data-node-id="${nodeId}"]`);
    if (!strip) return null;
    const cells = [...strip.querySelectorAll(".adaptive-mask-cell")];
    return { states: cells.map((c) => c.dataset.state),
             colours: cells.map((c) => getComputedStyle(c).backgroundColor),
             caption: strip.querySelector(".adaptive-mask-caption").textContent,
             done: strip.dataset.done, visible: strip.getBoundingClientRect().width > 0 };
}"""


def strip_mask(strip: dict) -> str:
    return "".join(STATE_MARK[state] for state in strip["states"])


@pytest.fixture(scope="module")
def live_run(chromium, server):
    """Queue the visual graph from the page, as a user does, and wait for it to finish."""
    page = ComfyPage(chromium.new_page(), server.url).open()
    assert "AdaptiveDiffusion.LiveMask" in page.extension_names()
    page.load_api_graph(visual_graph(seed=301))
    page.place_nodes(LAYOUT)
    page.fit_view()
    page.evaluate(RECORD_LIVE_STRIPS)
    prompt_id = page.queue()
    entry = server.wait(prompt_id)
    assert entry["status"]["status_str"] == "success", entry["status"]
    page.page.wait_for_function(
        "() => ['10', '20'].every((id) => document.querySelector("
        "`.adaptive-mask[data-node-id='${id}']`)?.dataset.done === 'true')", timeout=30_000)
    page.page.wait_for_function("() => (window.app.graph.getNodeById(12).imgs?.[0]?.naturalWidth ?? 0) > 0",
                                timeout=30_000)
    return page, entry


def test_live_strip_shows_the_mask_of_the_trace_in_history(live_run, server):
    page, entry = live_run
    outputs = entry["outputs"]
    expected = outputs["10"]["adaptive_mask"][0]
    assert len(expected) == STEPS and "0" in expected and "1" in expected, expected
    strip = page.evaluate(READ_STRIP, "10")
    assert strip is not None and strip["visible"]
    assert strip_mask(strip) == expected
    assert strip["colours"] == [CELL_COLOURS[state] for state in strip["states"]]
    assert strip["caption"] == outputs["10"]["adaptive_summary"][0]
    stats = page.evaluate("(id) => document.querySelector(`.adaptive-stats[data-node-id='${id}']`)?.textContent", "13")
    assert stats == outputs["13"]["text"][0]
    # No error from our script (the frontend's own blocked calls to api.comfy.org are expected).
    assert [error for error in page.errors if "adaptive_mask.js" in error] == []
    page.screenshot(ARTIFACTS / "live_mask_graph.png")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    view_png(server, outputs["12"]["images"][0]).save(ARTIFACTS / "skip_mask.png")
    page.fit_view(README_VIEW, zoom=0.8)  # clear of the side bar and the queue toast
    page.screenshot(ARTIFACTS / "live_mask.png", clip=page.node_box(README_VIEW))


def test_strip_fills_in_step_by_step_during_sampling(live_run):
    page, _ = live_run
    snapshots = [s for s in page.evaluate("() => window.adaptiveSnapshots") if s["node"] == "10"]
    assert len(snapshots) >= STEPS // 2, snapshots
    for snapshot in snapshots:  # every event is on the node right after it arrives
        assert "".join(STATE_MARK[state] for state in snapshot["shown"]) == snapshot["mask"]
    pending = [s["mask"].count(".") for s in snapshots]
    assert pending == sorted(pending, reverse=True) and pending[0] > 0 and pending[-1] == 0
    assert len(set(pending)) >= STEPS // 2, "the strip should fill in over many steps"
    assert snapshots[-1]["done"] and not any(s["done"] for s in snapshots[:-1])


def test_sampler_node_with_the_patched_model_shows_the_same_mask(live_run):
    # SamplerCustomAdvanced (20) samples the same latent with the same settings and seed as the
    # Adaptive KSampler (10), so it must skip the same steps; its strip comes from events only.
    page, entry = live_run
    strip = page.evaluate(READ_STRIP, "20")
    assert strip is not None and strip_mask(strip) == entry["outputs"]["10"]["adaptive_mask"][0]
    assert strip["caption"].startswith("AdaptiveDiffusion: computed")


# Every text that a node's widgets show: the DOM widgets' text (our strip, with its caption) and
# the value of text widgets, such as the frontend's progress text ("$$node-text-preview" on both
# frontends), which a server's send_progress_text fills.
READ_NODE_TEXTS = """(nodeId) => (app.graph.getNodeById(nodeId)?.widgets ?? []).flatMap((widget) => [
    typeof widget.value === "string" ? widget.value : "", widget.element?.textContent ?? ""]).filter(Boolean)"""


def test_each_sampler_node_shows_the_summary_once_with_the_asked_and_achieved_speed(live_run):
    page, entry = live_run
    summary = entry["outputs"]["10"]["adaptive_summary"][0]
    for node_id in ("10", "20"):  # Adaptive KSampler; SamplerCustomAdvanced on the patched model
        shown = [text for text in page.evaluate(READ_NODE_TEXTS, node_id) if "AdaptiveDiffusion" in text]
        assert shown == [summary], (node_id, shown)
    # The visual graph asks for 2x; the achieved factor is the trace's calls, as the log has it.
    assert re.search(r" skipped: \d+\.\d\dx fewer model calls", summary) and summary.endswith("(asked 2x)"), summary
    stats = page.evaluate("(id) => document.querySelector(`.adaptive-stats[data-node-id='${id}']`)?.textContent", "13")
    assert stats.splitlines()[0] == summary  # Skip Stats, its own node, starts with it too


def test_final_mask_survives_a_page_reload_of_the_result(live_run):
    page, entry = live_run
    page.reload()
    # The graph comes back from the browser's workflow storage; our widget is not saved in it.
    assert page.evaluate(READ_STRIP, "10") is None
    # Load the result as the queue history's Load button does: its workflow, then its outputs.
    page.evaluate("""async (entry) => {
        await app.loadGraphData(entry.prompt[3].extra_pnginfo.workflow, true, false);
        app.nodeOutputs = entry.outputs;
    }""", entry)
    strip = page.evaluate(READ_STRIP, "10")
    assert strip is not None and strip_mask(strip) == entry["outputs"]["10"]["adaptive_mask"][0]
    assert strip["caption"] == entry["outputs"]["10"]["adaptive_summary"][0]
    assert page.evaluate("() => app.graph.getNodeById(10).widgets.find((w) => w.name === 'adaptive_mask').serialize") is False
    page.screenshot(ARTIFACTS / "reloaded_result.png")
