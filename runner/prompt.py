"""Workflows as API prompts, and per-item values set where the workflow says they go.

A workflow is converted from the frontend's UI format to the API format once per server session by comfy-cli's
converter (`comfy_cli.workflow_to_api`, which reads the server's /object_info for widget order). The workflow
itself declares which node inputs a run may set, in its top-level "extra" block:
    "extra": {"icedit": {"inputs": {"seed": [{"node": 10, "input": "seed"}], "image": [...], ...}}}
(the shipped ones are written so by devtools/build_workflows.py; a user's own workflow declares them the same
way). Each item then gets its image, instruction, seed, ... set on those inputs by name, never by widget position
or node type. Validation is the server's own (/prompt's node_errors). Stdlib + comfy-cli.
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

# The stock text-encoder loaders that the smoke run replaces (ComfyUI builds T5-XXL and Qwen2.5-VL-7B at their real
# sizes only), and the pack's testing loaders that stand in for them.
SMOKE_CLIP_SWAPS = {  # stock loader -> (stand-in, its file input, the smoke file's role)
    "DualCLIPLoader": ("ICEditSmokeTestCLIPLoader", "text_encoder_name", "text_encoders"),  # Flux's CLIP-L + T5
    "CLIPLoader": ("ICEditSmokeTestQwenCLIPLoader", "text_encoder_name", "qwen_text_encoder"),  # Qwen2.5-VL
}


class PromptError(ValueError):
    """A workflow or a value that cannot be turned into a prompt; the message names the node and input."""


DECLARATION_HELP = ('declare them in the workflow\'s top-level "extra" block, as the shipped workflows do: '
                    '"extra": {"icedit": {"inputs": {"image": [{"node": 1, "input": "image"}], '
                    '"instruction": [{"node": 7, "input": "instruction"}], "seed": [{"node": 10, "input": "seed"}]}}} '
                    '(node: the node\'s id in the UI file; see README.md, "Your own workflow")')


class ApiPrompt(dict):
    """An API prompt (node id -> node) that knows where its workflow's declared inputs are: `inputs` maps a
    setting to its [(node id, input name), ...]. A dict, so it is sent, compared and copied as the prompt is."""

    def __init__(self, nodes: dict, inputs: dict | None = None):
        super().__init__(nodes)
        self.inputs = inputs or {}


def load_workflow(name_or_path: str) -> dict:
    path = WORKFLOWS.get(name_or_path, name_or_path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as error:
        raise PromptError(f"cannot read workflow {name_or_path!r}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise PromptError(f"workflow {path} is not valid JSON: {error}") from None


def workflow_path(name_or_path: str) -> str:
    """The file of a shipped workflow's short name, or the path as given: what messages name."""
    return WORKFLOWS.get(name_or_path, name_or_path)


def declared_inputs(workflow: dict, source: str) -> dict[str, list[tuple[str, str]]]:
    """{setting: [(node id, input name), ...]} from the workflow's extra.icedit.inputs; node ids as strings, as
    the API prompt's keys are. PromptError naming `source` (the file) when there is none or it is malformed."""
    extra = workflow.get("extra") if isinstance(workflow, dict) else None
    declared = ((extra or {}).get("icedit") or {}).get("inputs") if isinstance(extra, dict) else None
    if not declared:
        raise PromptError(f"{source}: the workflow does not declare which inputs a run may set; {DECLARATION_HELP}")
    if not isinstance(declared, dict):
        raise PromptError(f"{source}: extra.icedit.inputs must be an object of setting: [targets]; {DECLARATION_HELP}")
    inputs = {}
    for setting, targets in declared.items():
        if not isinstance(targets, list) or not targets or not all(
                isinstance(t, dict) and isinstance(t.get("node"), (int, str)) and isinstance(t.get("input"), str)
                for t in targets):
            raise PromptError(f"{source}: extra.icedit.inputs.{setting} = {json.dumps(targets)[:200]}: each setting "
                              'takes a list of {"node": <node id>, "input": "<input name>"}')
        inputs[setting] = [(str(target["node"]), target["input"]) for target in targets]
    return inputs


def to_api(workflow: dict, object_info: dict) -> ApiPrompt:
    """The API prompt of a UI-format workflow (an API-format one is returned as it is), with the inputs the
    workflow declares (none when it declares none: with_inputs then refuses every value). A declared input the
    converted prompt lacks is a PromptError naming it."""
    from comfy_cli.workflow_to_api import WorkflowConversionError, convert_ui_to_api

    types = {node.get("type") for node in workflow.get("nodes", [])} - {"Note", "MarkdownNote"}
    missing = sorted(t for t in types if t not in object_info)
    if missing:
        raise PromptError(f"the server has no node types {missing} (is this pack installed there?)")
    try:
        nodes = convert_ui_to_api(workflow, object_info)
    except WorkflowConversionError as error:
        raise PromptError(str(error)) from None
    try:
        inputs = declared_inputs(workflow, "the workflow")
    except PromptError:
        inputs = {}
    for setting, targets in inputs.items():
        for node_id, input_name in targets:
            if node_id not in nodes:
                raise PromptError(f"extra.icedit.inputs.{setting}: the workflow has no node {node_id}")
            if input_name not in nodes[node_id]["inputs"]:
                raise PromptError(f"extra.icedit.inputs.{setting}: node {node_id} ({nodes[node_id]['class_type']}) "
                                  f"has no input {input_name!r} (its inputs: {', '.join(nodes[node_id]['inputs'])})")
    return ApiPrompt(nodes, inputs)


def with_inputs(prompt: ApiPrompt, **values) -> ApiPrompt:
    """A copy of the prompt with each setting's value set on the inputs the workflow declares for it (None
    leaves it as the workflow has it). A setting the workflow does not declare is an error unless its value is
    None."""
    declared = getattr(prompt, "inputs", {})
    prompt = copy.deepcopy(prompt)
    for setting, value in values.items():
        if value is None:
            continue
        targets = declared.get(setting)
        if not targets:
            raise PromptError(f"this workflow declares no input {setting!r} (it declares: "
                              f"{', '.join(sorted(declared)) or 'none'})")
        # An input fed by another node takes its value from there.
        settable = [(node_id, name) for node_id, name in targets
                    if not isinstance(prompt[node_id]["inputs"].get(name), list)]
        if not settable:
            node_id, input_name = targets[0]
            raise PromptError(f"node {node_id} ({prompt[node_id]['class_type']}): {input_name} is linked "
                              f"to another node and cannot be set to {value!r}")
        for node_id, input_name in settable:
            prompt[node_id]["inputs"][input_name] = value
    return prompt


def output_kinds(prompt: dict) -> dict[str, str]:
    """{node id: kind} for every node that saves files: the last part of its filename_prefix ('ICEdit/edited' ->
    'edited'), as the workflow names the output. The kind of an output is its node's, not its file name's."""
    return {node_id: str(node["inputs"]["filename_prefix"]).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
            for node_id, node in prompt.items() if isinstance(node["inputs"].get("filename_prefix"), str)}


def model_files(prompt: dict) -> list[tuple[str, str, str]]:
    """(node id, input name, file) of every model-file input the prompt names (official or smoke-test)."""
    stand_ins = {(stand_in, input_name) for stand_in, input_name, _ in SMOKE_CLIP_SWAPS.values()}
    return [(node_id, input_name, value) for node_id, node in sorted(prompt.items())
            for input_name, value in node["inputs"].items()
            if (node["class_type"], input_name) in LOADER_INPUTS or (node["class_type"], input_name) in stand_ins]


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
    stock text-encoder loaders replaced by the pack's smoke-test ones (SMOKE_CLIP_SWAPS), and
    the checks random weights cannot pass turned off (SMOKE_SETTINGS)."""
    prompt = copy.deepcopy(prompt)
    for node in prompt.values():
        for name, value in list(node["inputs"].items()):
            if (node["class_type"], name) in LOADER_INPUTS and value in REAL_MODELS:
                node["inputs"][name] = SMOKE_FILES[REAL_MODELS[value]][1]
        for (class_type, name), value in SMOKE_SETTINGS.items():
            if node["class_type"] == class_type:
                node["inputs"][name] = value
        if node["class_type"] in SMOKE_CLIP_SWAPS:
            stand_in, input_name, role = SMOKE_CLIP_SWAPS[node["class_type"]]
            node["class_type"] = stand_in
            node["inputs"] = {input_name: SMOKE_FILES[role][1]}
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
