// AdaptiveDiffusion for ComfyUI: the live skip mask on sampler nodes and the Skip Stats text.
// GPL-3.0-or-later.
//
// The server sends "adaptive_diffusion.progress" once per step with the executing sampler node's
// id ({node, prompt_id, step, total, mask, done, summary}; mask: "1" computed, "0" skipped,
// "." not reached). This works for Adaptive KSampler and for any sampler node whose model went
// through AdaptiveDiffusionPatch. After the run the final mask and summary stay on the node; the
// Adaptive KSampler nodes also carry them in their outputs (ui adaptive_mask / adaptive_summary),
// so a result loaded again (queue history, workflow tabs) shows them too. The strip's caption is
// the only place on the node that shows the summary (the server sends no progress text for it).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const EVENT = "adaptive_diffusion.progress";
const MASK_WIDGET = "adaptive_mask";
const STATS_WIDGET = "adaptive_stats";
const SAMPLERS_WITH_MASK_OUTPUT = new Set(["AdaptiveKSampler", "AdaptiveKSamplerAdvanced"]);
const STATS_NODE = "AdaptiveSkipStats";
const STATE_OF = { "1": "computed", "0": "skipped", ".": "pending" };
// Cells + three caption lines at a sampler node's usual width, with the widget margin: a summary
// that says the achieved speed fell short of the asked one, and why, takes a third line.
const MASK_HEIGHT = 90;
const STATS_HEIGHT = 130;
const STATS_MIN_WIDTH = 380; // the summary on one line

// Okabe-Ito colours, the same as the Skip Mask Preview picture (colour-blind safe).
const STYLE = `
.adaptive-mask { display: flex; flex-direction: column; gap: 4px; padding: 2px 6px;
  box-sizing: border-box; font: 11px sans-serif; color: var(--input-text, #ddd); overflow: hidden; }
.adaptive-mask-cells { display: flex; gap: 1px; height: 16px; flex: none; }
.adaptive-mask-cell { flex: 1 1 0; min-width: 1px; border-radius: 2px; }
.adaptive-mask-cell[data-state="computed"] { background: #0072B2; }
.adaptive-mask-cell[data-state="skipped"] { background: #E69F00; }
.adaptive-mask-cell[data-state="pending"] { background: transparent; box-shadow: inset 0 0 0 1px #777; }
.adaptive-mask-caption { line-height: 1.3; }
.adaptive-stats { margin: 0; padding: 4px 6px; box-sizing: border-box; overflow: auto;
  font: 11px monospace; white-space: pre-wrap; color: var(--input-text, #ddd);
  background: var(--comfy-input-bg, #222); border-radius: 4px; }
`;

function addStyle() {
  const style = document.createElement("style");
  style.dataset.adaptiveDiffusion = "";
  style.textContent = STYLE;
  document.head.append(style);
}

function element(tag, className) {
  const node = document.createElement(tag);
  node.className = className;
  return node;
}

// Execution ids are "12" on the root graph and "5:12" for node 12 inside subgraph node 5.
function nodeForExecutionId(executionId) {
  let graph = app.graph;
  let node = null;
  for (const part of String(executionId).split(":")) {
    node = graph?.getNodeById(part) ?? null;
    if (!node) return null;
    graph = node.subgraph;
  }
  return node;
}

// Output store keys are "12" on the root graph and "<subgraph uuid>:12" inside a subgraph.
function nodeForLocatorId(locatorId) {
  const text = String(locatorId);
  const split = text.lastIndexOf(":");
  if (split < 0) return app.graph?.getNodeById(text) ?? null;
  const subgraph = app.graph?.subgraphs?.get?.(text.slice(0, split));
  return subgraph?.getNodeById(text.slice(split + 1)) ?? null;
}

function growToFit(node, minWidth = 0) {
  const [width, height] = node.computeSize();
  node.setSize([Math.max(node.size[0], width, minWidth), Math.max(node.size[1], height)]);
  node.graph?.setDirtyCanvas(true, true);
}

// Widgets are added on first use, so nodes that never sample with AdaptiveDiffusion stay as
// they are, and nothing of ours is saved in the workflow (serialize: false).
function domWidget(node, name, root, height, minWidth = 0) {
  const existing = node.widgets?.find((widget) => widget.name === name);
  if (existing) return existing;
  const widget = node.addDOMWidget(name, name, root, {
    serialize: false,
    hideOnZoom: false,
    getMinHeight: () => height,
    getMaxHeight: () => height,
  });
  widget.serialize = false;
  growToFit(node, minWidth);
  return widget;
}

function maskWidget(node) {
  const existing = node.widgets?.find((widget) => widget.name === MASK_WIDGET);
  if (existing) return existing;
  const root = element("div", "adaptive-mask");
  root.title = "AdaptiveDiffusion steps: blue computed, orange skipped, outlined not reached yet";
  root.append(element("div", "adaptive-mask-cells"), element("div", "adaptive-mask-caption"));
  return domWidget(node, MASK_WIDGET, root, MASK_HEIGHT);
}

function setCells(container, mask) {
  while (container.children.length > mask.length) container.lastChild.remove();
  while (container.children.length < mask.length) container.append(element("div", "adaptive-mask-cell"));
  [...mask].forEach((mark, step) => {
    const cell = container.children[step];
    const state = STATE_OF[mark] ?? "pending";
    if (cell.dataset.state !== state) {
      cell.dataset.state = state;
      cell.title = `step ${step + 1}: ${state}`;
    }
  });
}

function liveCaption(mask) {
  const done = [...mask].filter((mark) => mark !== ".").length;
  const skipped = [...mask].filter((mark) => mark === "0").length;
  return `AdaptiveDiffusion: step ${done}/${mask.length}, ${skipped} skipped so far`;
}

function showMask(node, mask, caption, done) {
  const root = maskWidget(node).element;
  const [cells, text] = root.children;
  root.dataset.nodeId = String(node.id);
  root.dataset.mask = mask;
  root.dataset.done = done ? "true" : "false";
  setCells(cells, mask);
  text.textContent = caption || liveCaption(mask);
  node.setDirtyCanvas?.(true, false);
}

function showStats(node, text) {
  let widget = node.widgets?.find((w) => w.name === STATS_WIDGET);
  if (!widget) widget = domWidget(node, STATS_WIDGET, element("pre", "adaptive-stats"), STATS_HEIGHT,
    STATS_MIN_WIDTH);
  widget.element.dataset.nodeId = String(node.id);
  widget.element.textContent = text;
}

// What an output of one of our nodes has to show; false when it has nothing for us.
function showOutput(node, output) {
  if (!node || !output) return false;
  if (SAMPLERS_WITH_MASK_OUTPUT.has(node.comfyClass) && output.adaptive_mask?.length) {
    showMask(node, output.adaptive_mask[0], output.adaptive_summary?.[0] ?? "", true);
    return true;
  }
  if (node.comfyClass === STATS_NODE && output.text?.length) {
    showStats(node, output.text[0]);
    return true;
  }
  return false;
}

function onProgress({ detail }) {
  const node = detail && nodeForExecutionId(detail.node);
  if (!node || typeof detail.mask !== "string") return;
  showMask(node, detail.mask, detail.done ? detail.summary : "", detail.done);
}

app.registerExtension({
  name: "AdaptiveDiffusion.LiveMask",

  setup() {
    addStyle();
    api.addEventListener(EVENT, onProgress);
  },

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!SAMPLERS_WITH_MASK_OUTPUT.has(nodeData.name) && nodeData.name !== STATS_NODE) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      onExecuted?.apply(this, arguments);
      showOutput(this, output);
    };
  },

  // Outputs set as a whole: a result loaded again from the queue or a restored workflow tab.
  onNodeOutputsUpdated(nodeOutputs) {
    for (const [locatorId, output] of Object.entries(nodeOutputs ?? {})) {
      showOutput(nodeForLocatorId(locatorId), output);
    }
  },
});
