"""Convert a workflow saved by the ComfyUI frontend (UI format: nodes, links, widgets_values) into the API
format that POST /prompt takes, checked against a server's /object_info.

What it checks, with errors that name node and input: every node type exists, every link joins an output to
an input of the same type, every widget value is of the declared kind and in range (combo values must be among
the options the server lists). Stdlib only.
"""
from __future__ import annotations

import copy

# Frontend-only nodes that never reach the server.
FRONTEND_ONLY = {"Note", "MarkdownNote"}
MODE_ALWAYS, MODE_NEVER, MODE_BYPASS = 0, 2, 4
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


class WorkflowError(ValueError):
    pass


def _input_spec(info: dict, name: str):
    for section in ("required", "optional"):
        if name in info["input"].get(section, {}):
            return info["input"][section][name]
    return None


def _ordered_inputs(info: dict) -> list[str]:
    order = info.get("input_order")
    if order:
        return list(order.get("required", [])) + list(order.get("optional", []))
    return list(info["input"].get("required", {})) + list(info["input"].get("optional", {}))


def _kind(spec) -> str:
    declared = spec[0]
    if isinstance(declared, list):
        return "COMBO"
    return declared


def _options(spec) -> dict:
    return spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}


def combo_choices(spec) -> list:
    """The choices of a combo input, in either form /object_info lists them (V1 list or V3 options)."""
    if isinstance(spec[0], list):
        return spec[0]
    return _options(spec).get("options", [])


def _extra_widget_values(name: str, spec) -> int:
    """Values the frontend stores after a widget for its companion controls."""
    options = _options(spec)
    extra = 0
    if _kind(spec) in ("INT", "FLOAT") and (options.get("control_after_generate")
                                            or name in ("seed", "noise_seed")):
        extra += 1  # "fixed" / "randomize" / ...
    if options.get("image_upload") or options.get("video_upload") or options.get("audio_upload"):
        extra += 1  # the upload button's value
    return extra


def _check_value(node_label: str, name: str, spec, value):
    kind = _kind(spec)
    options = _options(spec)
    if kind == "COMBO":
        choices = combo_choices(spec)
        if value not in choices:
            shown = choices if len(choices) <= 12 else choices[:12] + ["..."]
            raise WorkflowError(f"{node_label}: {name} = {value!r} is not one of the server's choices {shown}")
    elif kind == "INT":
        if isinstance(value, bool) or not isinstance(value, int):
            raise WorkflowError(f"{node_label}: {name} must be an integer, got {value!r}")
    elif kind == "FLOAT":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise WorkflowError(f"{node_label}: {name} must be a number, got {value!r}")
    elif kind == "BOOLEAN":
        if not isinstance(value, bool):
            raise WorkflowError(f"{node_label}: {name} must be true or false, got {value!r}")
    elif kind == "STRING":
        if not isinstance(value, str):
            raise WorkflowError(f"{node_label}: {name} must be text, got {value!r}")
    if kind in ("INT", "FLOAT"):
        low, high = options.get("min"), options.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            raise WorkflowError(f"{node_label}: {name} = {value} is outside [{low}, {high}]")


def _types_match(output_type, input_type) -> bool:
    if output_type == "*" or input_type == "*":
        return True
    if isinstance(input_type, list) or isinstance(output_type, list):
        return True  # combo fed by a primitive/combo output; the server validates the value
    outputs = set(str(output_type).split(","))
    inputs = set(str(input_type).split(","))
    return bool(outputs & inputs)


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    """The API-format prompt for a UI-format workflow. Raises WorkflowError naming what is wrong."""
    nodes = {node["id"]: node for node in workflow.get("nodes", [])}
    links = {}
    for link in workflow.get("links", []):
        link_id, from_id, from_slot, to_id, to_slot, link_type = link[:6]
        links[link_id] = (from_id, from_slot, to_id, to_slot, link_type)

    missing = sorted({n["type"] for n in nodes.values()
                      if n["type"] not in object_info and n["type"] not in FRONTEND_ONLY})
    if missing:
        raise WorkflowError(f"the server has no node types {missing} (missing custom nodes?)")

    prompt = {}
    for node_id, node in sorted(nodes.items()):
        node_type = node["type"]
        if node_type in FRONTEND_ONLY or node.get("mode", MODE_ALWAYS) == MODE_NEVER:
            continue
        label = f"node {node_id} ({node_type})"
        if node.get("mode", MODE_ALWAYS) == MODE_BYPASS:
            raise WorkflowError(f"{label} is bypassed; bypassed nodes are not supported by this converter")
        info = object_info[node_type]
        linked = {}
        for slot in node.get("inputs", []):
            if slot.get("link") is None:
                continue
            from_id, from_slot, _, _, link_type = links[slot["link"]]
            source = nodes.get(from_id)
            if source is None or source["type"] in FRONTEND_ONLY:
                raise WorkflowError(f"{label}: input {slot['name']} is linked to missing node {from_id}")
            source_outputs = object_info[source["type"]]["output"]
            if from_slot >= len(source_outputs):
                raise WorkflowError(f"{label}: input {slot['name']} is linked to output {from_slot} of node "
                                    f"{from_id} ({source['type']}), which has {len(source_outputs)} outputs")
            spec = _input_spec(info, slot["name"])
            if spec is None:
                raise WorkflowError(f"{label}: the workflow links an input {slot['name']!r} the node does not have")
            if not _types_match(source_outputs[from_slot], spec[0]):
                raise WorkflowError(f"{label}: input {slot['name']} takes {spec[0]} but is linked to "
                                    f"{source_outputs[from_slot]} from node {from_id} ({source['type']})")
            linked[slot["name"]] = [str(from_id), from_slot]

        values = list(node.get("widgets_values") or [])
        if isinstance(node.get("widgets_values"), dict):
            raise WorkflowError(f"{label}: widgets_values as a mapping is not supported")
        inputs = {}
        position = 0
        for name in _ordered_inputs(info):
            spec = _input_spec(info, name)
            if spec is None:
                continue
            kind = _kind(spec)
            if kind in WIDGET_TYPES and not _options(spec).get("forceInput"):
                if position >= len(values):
                    if name in linked:
                        inputs[name] = linked[name]
                        continue
                    optional = name in info["input"].get("optional", {})
                    if optional:
                        continue
                    raise WorkflowError(f"{label}: no widget value for {name!r}; the workflow's widget list "
                                        f"({len(values)} values) is out of date for this node")
                value = values[position]
                position += 1 + _extra_widget_values(name, spec)
                if name in linked:
                    inputs[name] = linked[name]
                else:
                    _check_value(label, name, spec, value)
                    inputs[name] = value
            elif name in linked:
                inputs[name] = linked[name]
            elif name in info["input"].get("required", {}):
                raise WorkflowError(f"{label}: required input {name!r} ({kind}) is not connected")
        if position < len(values):
            raise WorkflowError(f"{label}: the workflow has {len(values)} widget values but the node takes "
                                f"{position}; the workflow is out of date for this node")
        prompt[str(node_id)] = {"class_type": node_type, "inputs": inputs,
                                "_meta": {"title": node.get("title") or info.get("display_name", node_type)}}
    return prompt


def set_widget(workflow: dict, node_type: str, index: int, value, title: str | None = None) -> dict:
    """A copy of the workflow with widget `index` of the (only, or titled) node of `node_type` set."""
    workflow = copy.deepcopy(workflow)
    matches = [n for n in workflow["nodes"] if n["type"] == node_type and (title is None or n.get("title") == title)]
    if len(matches) != 1:
        raise WorkflowError(f"expected one {node_type} node{f' titled {title!r}' if title else ''}, "
                            f"found {len(matches)}")
    matches[0]["widgets_values"][index] = value
    return workflow
