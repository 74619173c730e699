// AdaptiveDiffusion for ComfyUI: saved workflows keep their meaning when an input is appended.
// GPL-3.0-or-later.
//
// `speed` was appended after every existing input. A node placed now gets its default ("2x"). A
// node from a workflow saved before `speed` existed has fewer widget values than widgets, and
// the frontend would leave the new widget at its default, changing what the workflow does: such
// a node gets "threshold (δ)", the behaviour it was saved with. (The server reads a prompt
// without `speed` the same way: nodes/inputs.py.)
import { app } from "../../scripts/app.js";

const NODES = new Set(["AdaptiveKSampler", "AdaptiveKSamplerAdvanced", "AdaptiveDiffusionPatch"]);
// Appended inputs, oldest first, with the value that means "as before this input existed".
const APPENDED = [["speed", "threshold (δ)"]];

// Appended inputs are the last widgets: a workflow with fewer values than the node stores now
// was saved before the missing ones existed.
function keepSavedMeaning(node, info) {
  const saved = info?.widgets_values;
  if (!Array.isArray(saved)) return;
  const missing = (node.serialize().widgets_values?.length ?? 0) - saved.length;
  for (const [name, before] of APPENDED.slice(Math.max(0, APPENDED.length - missing))) {
    const widget = node.widgets?.find((w) => w.name === name);
    if (widget) widget.value = before;
  }
}

app.registerExtension({
  name: "AdaptiveDiffusion.SavedInputs",

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!NODES.has(nodeData.name)) return;
    const onConfigure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function (info) {
      const result = onConfigure?.apply(this, arguments);
      keepSavedMeaning(this, info);
      return result;
    };
  },
});
