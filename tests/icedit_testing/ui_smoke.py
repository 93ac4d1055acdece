"""A shipped UI-format workflow switched to the smoke-test models, for the tests that load the UI form itself
(the browser test; the UI-vs-API check). Widgets are found by input name through /object_info's input order,
and the swapped text-encoder loader carries its own type in every field the frontend reads."""
from __future__ import annotations

import copy

from comfyui_icedit.icedit_core.model_files import LOADER_INPUTS, REAL_MODELS, SMOKE_FILES, SMOKE_SETTINGS
from comfyui_icedit.runner.prompt import SMOKE_CLIP_SWAPS

PACK_PROPERTIES = {"cnr_id": "comfyui-icedit"}


def widget_slots(object_info: dict, node_type: str) -> list[tuple[str, object]]:
    """(input name, default) of each position in a node's widgets_values, in order; a seed's control value is a
    slot of its own (named "<input>:control", default "fixed"), as is an image upload's."""
    info = object_info[node_type]
    order = info["input_order"].get("required", []) + info["input_order"].get("optional", [])
    slots = []
    for name in order:
        spec = info["input"].get("required", {}).get(name) or info["input"].get("optional", {}).get(name)
        kind = spec[0]
        options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        if isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"):
            default = options.get("default", kind[0] if isinstance(kind, list) and kind else None)
            slots.append((name, default))
            if options.get("control_after_generate") or name in ("seed", "noise_seed"):
                slots.append((name + ":control", "fixed"))
            if options.get("image_upload"):
                slots.append((name + ":upload", "image"))
    return slots


def widget_index(object_info: dict, node_type: str, input_name: str) -> int:
    """The position of an input's value in a node's widgets_values (seed widgets carry a control value)."""
    for position, (name, _) in enumerate(widget_slots(object_info, node_type)):
        if name == input_name:
            return position
    raise KeyError(f"{node_type} has no input {input_name}")


def set_widget(workflow: dict, object_info: dict, node_type: str, input_name: str, value) -> None:
    slots = widget_slots(object_info, node_type)
    index = widget_index(object_info, node_type, input_name)
    for node in workflow["nodes"]:
        if node["type"] == node_type:
            values = node["widgets_values"]
            # A file saved before the node gained optional widgets: the frontend shows their defaults.
            values += [default for _, default in slots[len(values):index + 1]]
            values[index] = value


def smoke_ui_workflow(workflow: dict, object_info: dict) -> dict:
    workflow = copy.deepcopy(workflow)
    loaders = {node_type for node_type, _ in LOADER_INPUTS}
    for node in workflow["nodes"]:
        if node["type"] in loaders:
            node["widgets_values"] = [SMOKE_FILES[REAL_MODELS[value]][1] if isinstance(value, str) and value in
                                      REAL_MODELS else value for value in node["widgets_values"]]
    for (node_type, input_name), value in SMOKE_SETTINGS.items():
        set_widget(workflow, object_info, node_type, input_name, value)
    for node in workflow["nodes"]:
        if node["type"] in SMOKE_CLIP_SWAPS:
            stand_in, _, role = SMOKE_CLIP_SWAPS[node["type"]]
            node["type"] = stand_in
            node["widgets_values"] = [SMOKE_FILES[role][1]]
            node["title"] = "Smoke-test text encoders (random weights)"
            node["properties"] = {**node["properties"], "Node name for S&R": stand_in, **PACK_PROPERTIES}
            node["properties"].pop("ver", None)
    return workflow
