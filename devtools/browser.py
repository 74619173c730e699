"""Headless Chromium on the real ComfyUI frontend, for browser tests (Playwright, sync API).

The browser is the distribution's chromium (`scripts/dev.py test` installs Debian's chromium and
chromium-driver); Playwright never downloads one. A missing browser raises ChromiumMissing, so a
test that needs it fails instead of being skipped.

    with chromium_context() as context:
        comfy = ComfyPage(context.new_page(), server.url).open()
        comfy.load_api_graph(graph)
        prompt_id = comfy.queue()
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

# ADAPTIVE_CHROMIUM: another chromium binary (other distributions); Debian's by default.
CHROMIUM = Path(os.environ.get("ADAPTIVE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")
VIEWPORT = {"width": 1400, "height": 900}
# A fresh ComfyUI user gets the template browser, a minimap and source badges over the nodes;
# turned off so they do not cover the canvas in screenshots (server-side user settings).
QUIET_UI_SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False,
                     "Comfy.NodeBadge.NodeSourceBadgeMode": "None"}
# ... and a "Nodes 2.0" banner, dismissed in the browser's local storage.
QUIET_UI_SCRIPT = "try { localStorage.setItem('vueNodesBannerDismissed', 'true'); } catch (e) {}"

# Screenshots, one folder per host (scripts/dev.py names it), so both frontends' pictures are kept.
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "browser" / os.environ.get("ADAPTIVE_HOST_NAME", "host")

# In the page: the frontend's own app and api objects (what extensions import).
APP = "window.comfyAPI.app.app"
API = "window.comfyAPI.api.api"


class ChromiumMissing(RuntimeError):
    pass


def chromium_executable() -> Path:
    """The chromium binary; raises ChromiumMissing (never skips) when it is not installed."""
    if not CHROMIUM.exists():
        raise ChromiumMissing(
            f"{CHROMIUM} not found: the browser tests need Debian's chromium. `python3 scripts/dev.py "
            "test` installs it (apt-get install chromium chromium-driver); or point "
            "ADAPTIVE_CHROMIUM at a chromium binary.")
    return CHROMIUM


@contextmanager
def chromium_context(viewport: dict[str, int] | None = None) -> Iterator[Any]:
    """A Playwright BrowserContext of headless chromium with a fresh, temporary profile."""
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="adaptive-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(executable), headless=True, args=list(CHROMIUM_ARGS),
            viewport=viewport or VIEWPORT)
        try:
            yield context
        finally:
            context.close()


class ComfyPage:
    """One tab on the ComfyUI frontend, driven through the frontend's own JavaScript API."""

    def __init__(self, page: Any, base_url: str):
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.errors: list[str] = []  # uncaught page errors and console errors, for assertions
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("console", lambda message: message.type == "error" and self.errors.append(
            f"console: {message.text}"))

    def open(self, timeout_s: float = 90.0) -> "ComfyPage":
        """Load the frontend and wait until its app, graph and extensions are ready."""
        for setting, value in QUIET_UI_SETTINGS.items():
            self.page.request.post(f"{self.base_url}/settings/{setting}", data=json.dumps(value))
        self.page.add_init_script(QUIET_UI_SCRIPT)
        self.page.goto(self.base_url + "/", timeout=timeout_s * 1000)
        self.wait_until_ready(timeout_s)
        return self

    def reload(self, timeout_s: float = 90.0) -> "ComfyPage":
        self.page.reload(timeout=timeout_s * 1000)
        self.wait_until_ready(timeout_s)
        return self

    def wait_until_ready(self, timeout_s: float = 90.0) -> None:
        """Wait until the frontend has set up the app and opened its first workflow: a graph
        loaded before that would be replaced by the restored or default workflow."""
        self.page.wait_for_function("""() => {
            const app = window.comfyAPI?.app?.app;
            const workspace = app?.extensionManager;
            return !!(app && window.app === app && app.canvas && workspace?.workflow?.activeWorkflow
                      && !workspace.spinner);
        }""", timeout=timeout_s * 1000)

    def evaluate(self, script: str, arg: Any = None) -> Any:
        """Run `script` (a JS function of one argument) in the page; `app` and `api` are in scope."""
        wrapper = f"async (arg) => {{ const app = {APP}; const api = {API}; return await ({script})(arg); }}"
        return self.page.evaluate(wrapper, arg)

    def extension_names(self) -> list[str]:
        return self.evaluate("() => app.extensions.map((e) => e.name)")

    def load_api_graph(self, graph: dict, name: str = "graph.json") -> None:
        """An API-format prompt as a graph on the canvas (node ids kept), fitted to the view."""
        self.evaluate("async ([graph, name]) => { await app.loadApiJson(graph, name); }", [graph, name])
        self.fit_view()

    def load_workflow(self, workflow: dict) -> None:
        """A UI-format workflow, as when a user opens or drops a workflow file."""
        self.evaluate("async (workflow) => { await app.loadGraphData(workflow); }", workflow)

    def fit_view(self, node_ids: list | None = None, zoom: float = 0.9) -> None:
        """Zoom and pan so that the given nodes (default: all) fill the view."""
        self.evaluate("""([ids, zoom]) => {
            const nodes = ids ? ids.map((id) => app.graph.getNodeById(id)) : (app.graph.nodes ?? app.graph._nodes);
            if (!nodes.length) return;
            const title = 30;  // node title bar, drawn above node.pos
            const x0 = Math.min(...nodes.map((n) => n.pos[0]));
            const y0 = Math.min(...nodes.map((n) => n.pos[1] - title));
            const x1 = Math.max(...nodes.map((n) => n.pos[0] + n.size[0]));
            const y1 = Math.max(...nodes.map((n) => n.pos[1] + n.size[1]));
            app.canvas.ds.fitToBounds([x0, y0, x1 - x0, y1 - y0], { zoom });
            app.graph.setDirtyCanvas(true, true);
        }""", [node_ids, zoom])

    def place_nodes(self, layout: dict) -> None:
        """Move (and optionally resize) nodes: {id: [x, y]} or {id: [x, y, width, height]}."""
        self.evaluate("""(layout) => {
            for (const [id, [x, y, width, height]] of Object.entries(layout)) {
                const node = app.graph.getNodeById(id);
                node.pos = [x, y];
                if (width) node.setSize([width, height ?? node.size[1]]);
            }
            app.graph.setDirtyCanvas(true, true);
        }""", {str(k): v for k, v in layout.items()})

    def queue(self) -> str:
        """Queue the graph on the canvas as the Queue button does; returns the prompt id."""
        return self.evaluate("""async () => {
            const prompt = await app.graphToPrompt();
            try {
                return (await api.queuePrompt(0, prompt)).prompt_id;
            } catch (error) {  // the server's node_errors say which input was refused
                throw new Error(`prompt rejected: ${JSON.stringify(error.response ?? String(error))}`);
            }
        }""")

    def visible_dialog_texts(self) -> list[str]:
        """The text of each open dialog (e.g. the frontend's missing-node-types dialog)."""
        return self.page.locator("[role=dialog]:visible").all_inner_texts()

    def problem_report_texts(self) -> list[str]:
        """What the frontend tells a user about a workflow it cannot run: its dialogs (frontend
        1.32, e.g. missing node types), else the error panel that 1.49's error toast opens
        ("View details": missing node packs, missing models)."""
        dialogs = self.visible_dialog_texts()
        if dialogs:
            return dialogs
        details = self.page.get_by_text("View details")
        if details.count() == 0:
            return []
        shown_before = set(self.page.inner_text("body").splitlines())
        details.first.click()
        self.page.wait_for_timeout(800)
        # The panel's text: what the page shows now that it did not show before the click.
        return ["\n".join(line for line in self.page.inner_text("body").splitlines() if line not in shown_before)]

    def node_box(self, node_ids: list, margin: float = 16) -> dict[str, float]:
        """The page-pixel box around the given nodes (title bars included), for a clipped screenshot."""
        return self.evaluate("""([ids, margin]) => {
            const { scale, offset } = app.canvas.ds;
            const canvas = app.canvas.canvas.getBoundingClientRect();
            const title = 30;
            const nodes = ids.map((id) => app.graph.getNodeById(id));
            const x0 = Math.min(...nodes.map((n) => n.pos[0])), y0 = Math.min(...nodes.map((n) => n.pos[1] - title));
            const x1 = Math.max(...nodes.map((n) => n.pos[0] + n.size[0]));
            const y1 = Math.max(...nodes.map((n) => n.pos[1] + n.size[1]));
            const left = Math.max(0, canvas.left + (x0 + offset[0]) * scale - margin);
            const top = Math.max(0, canvas.top + (y0 + offset[1]) * scale - margin);
            return { x: left, y: top,
                     width: Math.min(window.innerWidth, canvas.left + (x1 + offset[0]) * scale + margin) - left,
                     height: Math.min(window.innerHeight, canvas.top + (y1 + offset[1]) * scale + margin) - top };
        }""", [list(node_ids), margin])

    def screenshot(self, path: Path, clip: dict[str, float] | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), clip=clip)
        return path
