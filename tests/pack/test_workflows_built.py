"""The shipped workflows are what devtools/build_workflows.py writes, and carry what ComfyUI-Manager and the
frontend need. The builder reads the pack's node schemas with ComfyUI in this process, hence this tier."""
from __future__ import annotations

import json
import os

import pytest

from comfyui_icedit.devtools import build_workflows, node_info
from comfyui_icedit.icedit_core.model_files import LOADER_INPUTS, MODEL_FILES, REAL_MODELS
from icedit_testing import REPO

UI_FIELDS = ("id", "type", "pos", "size", "flags", "order", "mode", "properties")


@pytest.mark.parametrize("variant", build_workflows.VARIANTS)
def test_committed_workflow_is_the_built_one(variant):
    with open(os.path.join(REPO, "workflows", f"icedit_{variant}.json"), encoding="utf-8") as handle:
        committed = json.load(handle)
    assert committed == build_workflows.build(variant), "run: python -m comfyui_icedit.devtools.build_workflows"


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


@pytest.mark.parametrize("variant", build_workflows.VARIANTS)
def test_links_and_sockets_agree(variant):
    workflow = build_workflows.build(variant)
    nodes = {node["id"]: node for node in workflow["nodes"]}
    assert len(nodes) == len(workflow["nodes"]), "node ids repeat"
    assert [node["order"] for node in workflow["nodes"]] == list(range(len(nodes)))
    assert [link[0] for link in workflow["links"]] == list(range(1, workflow["last_link_id"] + 1))
    for link_id, source, source_slot, target, target_slot, _ in workflow["links"]:
        assert link_id in nodes[source]["outputs"][source_slot]["links"]
        assert nodes[target]["inputs"][target_slot]["link"] == link_id
    linked_inputs = sum(1 for node in nodes.values() for socket in node["inputs"] if socket["link"] is not None)
    assert linked_inputs == len(workflow["links"]), "an input is fed twice"


def test_an_overlay_replaces_in_place_removes_with_links_and_rejects_unknown_ids():
    bw = build_workflows
    base = bw.Workflow(
        nodes=(bw.Node(1, "LoadImage", (0, 0), (1, 1)), bw.Node(2, "SaveImage", (0, 0), (1, 1))),
        links=((1, 0, 2, "images"),),
        readme="{about}",
    )
    preview = bw.Node(3, "PreviewImage", (0, 0), (1, 1))
    added = bw.apply(base, bw.Overlay(insert_after={1: (preview,)}, reroute={(2, "images"): ((1, 0, 3, "images"),)}))
    assert [node.id for node in added.nodes] == [1, 3, 2] and added.links == ((1, 0, 3, "images"),)
    removed = bw.apply(base, bw.Overlay(remove=frozenset({2}), edit={1: {"title": "Source"}}))
    assert [(node.id, node.title) for node in removed.nodes] == [(1, "Source")] and removed.links == ()
    with pytest.raises(KeyError):
        bw.apply(base, bw.Overlay(replace=(bw.Node(9, "SaveImage", (0, 0), (1, 1)),)))
    with pytest.raises(KeyError):
        bw.apply(base, bw.Overlay(reroute={(2, "image"): ()}))


def test_the_core_snapshot_holds_the_core_nodes_the_workflows_use_and_no_others():
    assert set(node_info.core_snapshot()["nodes"]) == build_workflows.core_node_types(), \
        f"run: {node_info.REFRESH_COMMAND}"
    assert not set(node_info.core_snapshot()["nodes"]) & set(node_info.pack_object_info())


def test_a_pack_nodes_sockets_are_its_schemas():
    """The schema, not a table: an optional socket after the required ones, a forced-input STRING a socket, every
    other widget left out."""
    inputs, outputs = node_info.node_sockets("ICEditMultiTurn")
    assert inputs == (("model", "MODEL"), ("clip", "CLIP"), ("vae", "VAE"), ("image", "IMAGE"),
                      ("judge", "ICEDIT_JUDGE"))
    assert outputs == (("final", "IMAGE"), ("turns", "IMAGE"), ("log", "STRING"))
    assert ("instruction", "STRING") in node_info.node_sockets("ICEditEarlyFilterSampler")[0]
    with pytest.raises(KeyError, match="--refresh-core-nodes"):
        node_info.node_sockets("NoSuchNode")


@pytest.mark.parametrize("variant", build_workflows.VARIANTS)
def test_every_model_file_a_loader_names_is_in_the_model_table_under_the_loaders_folder(variant):
    """So the Read me lists it, the README's table has it and the runner checks it (icedit_core/model_files.py)."""
    folder_of = {name: model.folder for model in MODEL_FILES for name in model.names}
    named = []
    for node in build_workflows.assembled(variant).nodes:
        if not any(node_type == node.type for node_type, _ in LOADER_INPUTS):
            continue
        widgets = dict(zip(node_info.widget_names(node_info.object_info_entry(node.type)), node.widgets))
        for input_name, value in widgets.items():
            if (node.type, input_name) in LOADER_INPUTS:
                assert value in REAL_MODELS, f"{variant}: {node.type}.{input_name} = {value!r} is not in MODEL_FILES"
                assert folder_of[value] == LOADER_INPUTS[node.type, input_name][0], (variant, node.type, value)
                named.append(value)
    assert named, f"{variant} names no model file"
