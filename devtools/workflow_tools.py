"""UI-format workflows (the JSON the ComfyUI frontend saves and loads) checked against a server's
/object_info, and converted to the API format that POST /prompt takes.

The UI format keeps a node's widget values as one positional list, `widgets_values`, in the order
of the node's widget inputs in /object_info's `input_order`. The frontend adds values of its own
to that list: after an input with `control_after_generate` comes the control mode ("fixed",
"randomize", ...), after an input with `image_upload` the upload button's value. A widget input
that takes a link keeps its slot in `widgets_values`; the link wins. Links are
[id, origin_id, origin_slot, target_id, target_slot, type]; a node's serialized `inputs` are its
sockets (inputs that are not widgets) in order, then its linked widget inputs.

Standard library only.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

UI_VERSION = 0.4
# Registered by the frontend itself (no Python class), never sent to the server.
FRONTEND_ONLY_TYPES = frozenset({"Note", "MarkdownNote"})
CONTROL_MODES = ("fixed", "increment", "decrement", "randomize")
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
NODE_KEYS = ("id", "type", "pos", "size", "flags", "order", "mode", "inputs", "outputs", "properties",
             "widgets_values")
TOP_KEYS = ("last_node_id", "last_link_id", "nodes", "links", "groups", "config", "extra", "version")
MODE_ALWAYS = 0


class WorkflowError(ValueError):
    """The workflow cannot be read against this /object_info (wrong value count, unknown node...)."""


class Link(NamedTuple):
    id: int
    origin: int
    origin_slot: int
    target: int
    target_slot: int
    type: str


@dataclass(frozen=True)
class InputSpec:
    """One input of a node type as /object_info describes it."""
    name: str
    type: str  # "COMBO" for a list of choices
    options: dict = field(default_factory=dict)
    choices: tuple = ()
    required: bool = True

    @property
    def is_widget(self) -> bool:
        return self.type in WIDGET_TYPES

    @property
    def frontend_values(self) -> int:
        """Values the frontend stores after this widget's own value in `widgets_values`."""
        return int(bool(self.options.get("control_after_generate"))) + int(bool(self.options.get("image_upload")))


def parse_input_spec(name: str, spec: list, required: bool) -> InputSpec:
    """An /object_info input: [type, options] with type a list of choices (V1 nodes), or
    ["COMBO", {"options": [...]}] (V3 nodes)."""
    kind, options = spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
    if isinstance(kind, list):
        return InputSpec(name, "COMBO", options, tuple(kind), required)
    if kind == "COMBO":
        return InputSpec(name, "COMBO", options, tuple(options.get("options", ())), required)
    return InputSpec(name, kind, options, (), required)


def input_specs(info: dict, node_type: str) -> list[InputSpec]:
    """The node type's inputs in the frontend's order: required, then optional (hidden ones are
    filled in by the server)."""
    if node_type not in info:
        raise WorkflowError(f"node type {node_type!r} is not in /object_info")
    entry = info[node_type]
    order = entry.get("input_order") or {s: list(entry["input"].get(s, {})) for s in ("required", "optional")}
    return [parse_input_spec(name, entry["input"][section][name], section == "required")
            for section in ("required", "optional") for name in order.get(section, [])]


def read_workflow(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def backend_nodes(workflow: dict) -> Iterator[dict]:
    """Nodes that the server executes (not Notes)."""
    return (node for node in workflow["nodes"] if node["type"] not in FRONTEND_ONLY_TYPES)


def links_by_id(workflow: dict) -> dict[int, Link]:
    return {entry[0]: Link(*entry) for entry in workflow["links"]}


# --- structure ------------------------------------------------------------------------------

def _is_vector(value: Any, length: int) -> bool:
    return (isinstance(value, list) and len(value) == length
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value))


def node_structure_problems(node: dict) -> list[str]:
    where = f"node {node.get('id')} ({node.get('type')})"
    problems = [f"{where}: no {key!r}" for key in NODE_KEYS if key not in node]
    if problems:
        return problems
    if not isinstance(node["id"], int) or not isinstance(node["type"], str):
        problems.append(f"{where}: id must be an int and type a string")
    if not _is_vector(node["pos"], 2) or not _is_vector(node["size"], 2):
        problems.append(f"{where}: pos and size must be [x, y] numbers")
    if node["mode"] != MODE_ALWAYS:
        problems.append(f"{where}: mode {node['mode']} (muted or bypassed nodes are not expected here)")
    for entry in node["inputs"]:
        if not {"name", "type", "link"} <= set(entry):
            problems.append(f"{where}: input entry {entry} needs name, type and link")
    for entry in node["outputs"]:
        if not {"name", "type", "links"} <= set(entry):
            problems.append(f"{where}: output entry {entry} needs name, type and links")
    if not isinstance(node["widgets_values"], list) or not isinstance(node["properties"], dict):
        problems.append(f"{where}: widgets_values must be a list and properties a dict")
    return problems


def structure_problems(workflow: dict) -> list[str]:
    """What keeps `workflow` from being a UI-format (version 0.4) workflow."""
    problems = [f"no top-level {key!r}" for key in TOP_KEYS if key not in workflow]
    if problems:
        return problems
    if workflow["version"] != UI_VERSION:
        problems.append(f"version {workflow['version']} (expected {UI_VERSION})")
    for node in workflow["nodes"]:
        problems += node_structure_problems(node)
    ids = [node["id"] for node in workflow["nodes"]]
    if len(set(ids)) != len(ids):
        problems.append("node ids are not unique")
    if ids and workflow["last_node_id"] < max(ids):
        problems.append("last_node_id is below the largest node id")
    link_ids = [entry[0] for entry in workflow["links"]]
    if any(not isinstance(entry, list) or len(entry) != 6 for entry in workflow["links"]):
        problems.append("links must be [id, origin_id, origin_slot, target_id, target_slot, type]")
    elif len(set(link_ids)) != len(link_ids):
        problems.append("link ids are not unique")
    elif link_ids and workflow["last_link_id"] < max(link_ids):
        problems.append("last_link_id is below the largest link id")
    for group in workflow["groups"]:
        if not isinstance(group.get("title"), str) or not _is_vector(group.get("bounding"), 4):
            problems.append(f"group {group}: needs a title and bounding [x, y, width, height]")
    return problems


# --- links ----------------------------------------------------------------------------------

def _types_match(a: str, b: str) -> bool:
    return a == b or "*" in (a, b)


def link_problems(workflow: dict, info: dict) -> list[str]:
    """Every link joins an existing output and input of the same type, both ends agree on it, and
    the slot names and types are the ones /object_info gives."""
    nodes = {node["id"]: node for node in workflow["nodes"]}
    problems = []
    for link in links_by_id(workflow).values():
        where = f"link {link.id} ({link.origin}:{link.origin_slot} -> {link.target}:{link.target_slot})"
        origin, target = nodes.get(link.origin), nodes.get(link.target)
        if origin is None or target is None:
            problems.append(f"{where}: joins a node that does not exist")
            continue
        if origin["type"] in FRONTEND_ONLY_TYPES or origin["type"] not in info or target["type"] not in info:
            problems.append(f"{where}: joins a node that the server does not know")
            continue
        problems += _origin_problems(where, link, origin, info[origin["type"]])
        problems += _target_problems(where, link, target, input_specs(info, target["type"]))
    return problems


def _origin_problems(where: str, link: Link, origin: dict, entry: dict) -> list[str]:
    if link.origin_slot >= len(origin["outputs"]) or link.origin_slot >= len(entry["output"]):
        return [f"{where}: output slot {link.origin_slot} does not exist"]
    output = origin["outputs"][link.origin_slot]
    problems = []
    if link.id not in (output["links"] or []):
        problems.append(f"{where}: the output does not list the link")
    if output["name"] != entry["output_name"][link.origin_slot]:
        problems.append(f"{where}: output named {output['name']!r}, the server calls it "
                        f"{entry['output_name'][link.origin_slot]!r}")
    if not (output["type"] == link.type and _types_match(entry["output"][link.origin_slot], link.type)):
        problems.append(f"{where}: output type {output['type']} / server {entry['output'][link.origin_slot]}"
                        f" vs link type {link.type}")
    return problems


def _target_problems(where: str, link: Link, target: dict, specs: list[InputSpec]) -> list[str]:
    if link.target_slot >= len(target["inputs"]):
        return [f"{where}: input slot {link.target_slot} does not exist"]
    entry = target["inputs"][link.target_slot]
    spec = next((s for s in specs if s.name == entry["name"]), None)
    problems = []
    if entry["link"] != link.id:
        problems.append(f"{where}: the input does not name the link")
    if spec is None:
        return problems + [f"{where}: the server's {target['type']} has no input {entry['name']!r}"]
    if not (entry["type"] == link.type and _types_match(spec.type, link.type)):
        problems.append(f"{where}: input {entry['name']} type {entry['type']} / server {spec.type} vs link "
                        f"type {link.type}")
    if spec.is_widget and entry.get("widget", {}).get("name") != spec.name:
        problems.append(f"{where}: linked widget input {spec.name} lacks widget: {{name: {spec.name!r}}}")
    return problems


def socket_problems(workflow: dict, info: dict) -> list[str]:
    """The serialized sockets are the node type's non-widget inputs in order (then linked widget
    inputs), and every required one is connected."""
    problems = []
    for node in backend_nodes(workflow):
        specs = input_specs(info, node["type"])
        sockets = [s.name for s in specs if not s.is_widget]
        widgets = {s.name for s in specs if s.is_widget}
        names = [entry["name"] for entry in node["inputs"]]
        if names[:len(sockets)] != sockets or not set(names[len(sockets):]) <= widgets:
            problems.append(f"node {node['id']} ({node['type']}): inputs {names}, expected {sockets} "
                            "then linked widget inputs")
        linked = {entry["name"] for entry in node["inputs"] if entry["link"] is not None}
        problems += [f"node {node['id']} ({node['type']}): required input {s.name} is not connected"
                     for s in specs if s.required and not s.is_widget and s.name not in linked]
        # A host may append outputs to a core node (0.33.0's SaveImage returns its images): a
        # workflow saved before keeps loading, the frontend adds the new sockets.
        outputs = [entry["name"] for entry in node["outputs"]]
        if outputs != info[node["type"]]["output_name"][:len(outputs)]:
            problems.append(f"node {node['id']} ({node['type']}): outputs {outputs}, the server has "
                            f"{info[node['type']]['output_name']}")
    return problems


# --- widget values --------------------------------------------------------------------------

def widget_values(node: dict, specs: list[InputSpec]) -> dict[str, Any]:
    """{input name: value} from the node's positional widgets_values; raises WorkflowError when
    the count does not fit the node type's widgets."""
    values, index = {}, 0
    stored = node["widgets_values"]
    for spec in (s for s in specs if s.is_widget):
        if index >= len(stored):
            if not spec.required:  # an optional widget appended after the workflow was saved
                break
            raise WorkflowError(f"node {node['id']} ({node['type']}): no value for widget {spec.name}")
        values[spec.name] = stored[index]
        control = stored[index + 1] if index + 1 < len(stored) else None
        if spec.options.get("control_after_generate") and control not in CONTROL_MODES:
            raise WorkflowError(f"node {node['id']} ({node['type']}): {spec.name} must be followed by its "
                                f"control_after_generate mode {CONTROL_MODES}, got {control!r}")
        index += 1 + spec.frontend_values
    if index != len(stored):
        raise WorkflowError(f"node {node['id']} ({node['type']}): {len(stored)} widget values for "
                            f"{index} widget slots")
    return values


def value_problem(spec: InputSpec, value: Any) -> str | None:
    """Why `value` is not legal for the input (None: it is)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if spec.type == "COMBO":
        return None if value in spec.choices else f"{value!r} is not one of {list(spec.choices)[:12]}"
    if spec.type == "BOOLEAN":
        return None if isinstance(value, bool) else f"{value!r} is not a boolean"
    if spec.type == "STRING":
        return None if isinstance(value, str) else f"{value!r} is not a string"
    if spec.type == "INT" and not (number and float(value).is_integer()):
        return f"{value!r} is not a whole number"
    if spec.type == "FLOAT" and not (number and math.isfinite(value)):
        return f"{value!r} is not a number"
    low, high = spec.options.get("min", -math.inf), spec.options.get("max", math.inf)
    if not low <= value <= high:
        return f"{value} is outside [{low}, {high}]"
    step = spec.options.get("step")
    # The frontend's INT widget moves in steps from min (EmptyHunyuanLatentVideo.length: 1 + 4k).
    if spec.type == "INT" and step and math.isfinite(low) and (value - low) % step:
        return f"{value} is not min {low} + a multiple of step {step}"
    return None


def widget_problems(workflow: dict, info: dict) -> list[str]:
    problems = []
    for node in backend_nodes(workflow):
        specs = input_specs(info, node["type"])
        try:
            values = widget_values(node, specs)
        except WorkflowError as error:
            problems.append(str(error))
            continue
        for spec in specs:
            if spec.name in values and (problem := value_problem(spec, values[spec.name])):
                problems.append(f"node {node['id']} ({node['type']}).{spec.name}: {problem}")
    return problems


def frontend_only_problems(workflow: dict) -> list[str]:
    """Notes must stand alone: a link to one would vanish from the API prompt."""
    return [f"node {node['id']} ({node['type']}) is frontend-only but has sockets"
            for node in workflow["nodes"]
            if node["type"] in FRONTEND_ONLY_TYPES and (node["inputs"] or node["outputs"])]


def all_problems(workflow: dict, info: dict) -> list[str]:
    """Structure first: the later checks assume it."""
    problems = structure_problems(workflow)
    if problems:
        return problems
    unknown = [f"node {node['id']}: type {node['type']!r} is not in /object_info"
               for node in backend_nodes(workflow) if node["type"] not in info]
    if unknown:
        return unknown
    return (frontend_only_problems(workflow) + socket_problems(workflow, info)
            + link_problems(workflow, info) + widget_problems(workflow, info))


# --- API format -----------------------------------------------------------------------------

def node_title(node: dict, info: dict) -> str:
    return node.get("title") or info[node["type"]]["display_name"] or node["type"]


def to_api(workflow: dict, info: dict) -> dict:
    """The API-format prompt {id: {class_type, inputs, _meta}} the frontend would queue for this
    workflow (all nodes in mode 'always')."""
    links = links_by_id(workflow)
    prompt = {}
    for node in backend_nodes(workflow):
        specs = input_specs(info, node["type"])
        inputs: dict[str, Any] = dict(widget_values(node, specs))
        for entry in node["inputs"]:
            if entry["link"] is not None:
                link = links[entry["link"]]
                inputs[entry["name"]] = [str(link.origin), link.origin_slot]
        order = [spec.name for spec in specs]
        prompt[str(node["id"])] = {"inputs": {name: inputs[name] for name in order if name in inputs},
                                   "class_type": node["type"],
                                   "_meta": {"title": node_title(node, info)}}
    return prompt
