"""The shipped workflows as API prompts, and per-item values set by role and input name.

A workflow is converted from the frontend's UI format to the API format once per server session by comfy-cli's
converter (`comfy_cli.workflow_to_api`, which reads the server's /object_info for widget order); each item then
gets its image, instruction, seed, steps and panel width set on the API prompt by node type and input name,
never by widget position. Validation is the server's own (/prompt's node_errors). Stdlib + comfy-cli.
"""
from __future__ import annotations

import copy
import json
import os

from ..icedit_core.model_files import LOADER_INPUTS, REAL_MODELS, SMOKE_FILES, SMOKE_SETTINGS

PACK_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKFLOW_DIR = os.path.join(PACK_ROOT, "workflows")
# The shipped workflows by short name: workflows/icedit_<name>.json (basic, moe, early_filter, controlnet, ...).
# Empty where this package travels alone (a Ray worker gets it without the pack; the driver sends workflows).
WORKFLOWS = {name[len("icedit_"):-len(".json")]: os.path.join(WORKFLOW_DIR, name)
             for name in sorted(os.listdir(WORKFLOW_DIR) if os.path.isdir(WORKFLOW_DIR) else [])
             if name.startswith("icedit_") and name.endswith(".json")}

# role -> the (node type, input name) pairs that take it; every node of such a type in the prompt gets the value.
ROLES = {
    "image": (("LoadImage", "image"),),
    "video": (("LoadVideo", "file"),),
    "instruction": (("ICEditPromptEncode", "instruction"), ("ICEditMultiTurn", "instructions"),
                    ("ICEditPlanInstructions", "instruction")),
    "seed": (("KSampler", "seed"), ("ICEditEarlyFilterSampler", "seed"), ("ICEditMultiTurn", "seed"),
             ("ICEditVideoNoise", "noise_seed")),
    "steps": (("KSampler", "steps"), ("ICEditEarlyFilterSampler", "steps"), ("ICEditMultiTurn", "steps"),
              ("BasicScheduler", "steps")),
    "panel_width": (("ICEditDiptych", "panel_width"), ("ICEditMultiTurn", "panel_width")),
    "candidates": (("ICEditEarlyFilterSampler", "candidates"),),
    "early_steps": (("ICEditEarlyFilterSampler", "early_steps"),),
    "video_noise": (("ICEditVideoNoise", "mode"),),
    "frames_per_batch": (("ICEditVideoSampler", "frames_per_batch"),),
}
# The stock loader that the smoke run replaces, and the pack's testing loader that stands in for it.
SMOKE_CLIP_SWAP = ("DualCLIPLoader", "ICEditSmokeTestCLIPLoader", "text_encoder_name")


class PromptError(ValueError):
    """A workflow or a value that cannot be turned into a prompt; the message names the node and input."""


def load_workflow(name_or_path: str) -> dict:
    path = WORKFLOWS.get(name_or_path, name_or_path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as error:
        raise PromptError(f"cannot read workflow {name_or_path!r}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise PromptError(f"workflow {path} is not valid JSON: {error}") from None


def to_api(workflow: dict, object_info: dict) -> dict:
    """The API prompt of a UI-format workflow (an API-format one is returned as it is)."""
    from comfy_cli.workflow_to_api import WorkflowConversionError, convert_ui_to_api

    types = {node.get("type") for node in workflow.get("nodes", [])} - {"Note", "MarkdownNote"}
    missing = sorted(t for t in types if t not in object_info)
    if missing:
        raise PromptError(f"the server has no node types {missing} (is this pack installed there?)")
    try:
        return convert_ui_to_api(workflow, object_info)
    except WorkflowConversionError as error:
        raise PromptError(str(error)) from None


def nodes_taking(prompt: dict, role: str) -> list[tuple[str, str]]:
    """(node id, input name) of every node in the prompt that takes `role`."""
    pairs = dict(ROLES[role])
    return [(node_id, pairs[node["class_type"]]) for node_id, node in sorted(prompt.items())
            if node["class_type"] in pairs]


def with_inputs(prompt: dict, **values) -> dict:
    """A copy of the prompt with each role's value set (None leaves it as the workflow has it). A role that no
    node of the prompt takes is an error unless its value is None."""
    prompt = copy.deepcopy(prompt)
    for role, value in values.items():
        if value is None:
            continue
        if role not in ROLES:
            raise PromptError(f"unknown input role {role!r}; known: {sorted(ROLES)}")
        targets = nodes_taking(prompt, role)
        if not targets:
            raise PromptError(f"this workflow has no node that takes {role} "
                              f"(looked for {', '.join(f'{t}.{i}' for t, i in ROLES[role])})")
        # An input fed by another node (the plan feeding Multi-Turn's instructions) takes its value from there.
        settable = [(node_id, name) for node_id, name in targets
                    if not isinstance(prompt[node_id]["inputs"].get(name), list)]
        if not settable:
            node_id, input_name = targets[0]
            raise PromptError(f"node {node_id} ({prompt[node_id]['class_type']}): {input_name} is linked "
                              f"to another node and cannot be set to {value!r}")
        for node_id, input_name in settable:
            prompt[node_id]["inputs"][input_name] = value
    return prompt


def model_files(prompt: dict) -> list[tuple[str, str, str]]:
    """(node id, input name, file) of every model-file input the prompt names (official or smoke-test)."""
    _, stand_in, stand_in_input = SMOKE_CLIP_SWAP
    return [(node_id, input_name, value) for node_id, node in sorted(prompt.items())
            for input_name, value in node["inputs"].items()
            if (node["class_type"], input_name) in LOADER_INPUTS or (node["class_type"], input_name) == (
                stand_in, stand_in_input)]


def real_files_missing(workflow: dict, model_dirs: list[str]) -> list[str]:
    """The official model files a UI-format workflow loads that none of `model_dirs` holds, as 'folder/file'."""
    folders_by_type = {node_type: folders for (node_type, _), folders in LOADER_INPUTS.items()}
    named = {(value, folders_by_type[node["type"]]) for node in workflow["nodes"] if node["type"] in folders_by_type
             for value in node.get("widgets_values") or [] if isinstance(value, str) and value in REAL_MODELS}
    return sorted({f"{folders[0]}/{filename}" for filename, folders in named
                   if not any(os.path.exists(os.path.join(root, folder, filename))
                              for root in model_dirs for folder in folders)})


def smoke_prompt(prompt: dict) -> dict:
    """The prompt on the smoke-test models: each loader's file swapped for its random-weight stand-in, the
    stock DualCLIPLoader replaced by the pack's smoke-test text-encoder loader (ComfyUI fixes T5-XXL's size), and
    the checks random weights cannot pass turned off (SMOKE_SETTINGS)."""
    prompt = copy.deepcopy(prompt)
    stock, stand_in, input_name = SMOKE_CLIP_SWAP
    for node in prompt.values():
        for name, value in list(node["inputs"].items()):
            if (node["class_type"], name) in LOADER_INPUTS and value in REAL_MODELS:
                node["inputs"][name] = SMOKE_FILES[REAL_MODELS[value]][1]
        for (class_type, name), value in SMOKE_SETTINGS.items():
            if node["class_type"] == class_type:
                node["inputs"][name] = value
        if node["class_type"] == stock:
            node["class_type"] = stand_in
            node["inputs"] = {input_name: SMOKE_FILES["text_encoders"][1]}
            node["_meta"] = {"title": "Smoke-test text encoders (random weights)"}
    return prompt


def files_the_server_lacks(prompt: dict, object_info: dict) -> list[str]:
    """'Node.input = file' for each model file the prompt names that the server does not list."""
    lacking = []
    for node_id, input_name, value in model_files(prompt):
        class_type = prompt[node_id]["class_type"]
        spec = object_info.get(class_type, {}).get("input", {}).get("required", {}).get(input_name)
        if spec is None or value not in combo_choices(spec):
            lacking.append(f"{class_type}.{input_name} = {value}")
    return lacking


def combo_choices(spec) -> list:
    """The choices of a combo input, in either form /object_info lists them (V1 list or V3 options)."""
    if isinstance(spec[0], list):
        return spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return options.get("options", [])
