"""The shipped workflows are what headless/build_workflows.py writes, and carry what ComfyUI-Manager and the
frontend need."""
from __future__ import annotations

import json
import os

import pytest

from comfyui_icedit.headless import build_workflows

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UI_FIELDS = ("id", "type", "pos", "size", "flags", "order", "mode", "properties")


@pytest.mark.parametrize("variant", build_workflows.VARIANTS)
def test_committed_workflow_is_the_built_one(variant):
    with open(os.path.join(REPO, "workflows", f"icedit_{variant}.json"), encoding="utf-8") as handle:
        assert json.load(handle) == build_workflows.build(variant), "run: python -m headless.build_workflows"


@pytest.mark.parametrize("variant", build_workflows.VARIANTS)
def test_every_node_has_the_ui_fields_and_a_pack_id(variant):
    workflow = build_workflows.build(variant)
    for node in workflow["nodes"]:
        assert all(field in node for field in UI_FIELDS), node["type"]
        expected = "comfyui-icedit" if node["type"].startswith("ICEdit") else "comfy-core"
        assert node["properties"]["cnr_id"] == expected
    assert os.path.isfile(os.path.join(REPO, "workflows", f"icedit_{variant}.jpg"))  # template thumbnail
    notes = [n for n in workflow["nodes"] if n["type"] == "MarkdownNote"]
    assert notes and "ComfyUI/models" in notes[0]["widgets_values"][0]  # says where each model goes
