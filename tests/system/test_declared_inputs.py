"""A user's own workflow runs under --batch when it declares its settable inputs (extra.icedit.inputs): the runner
sets each value on the node the declaration names, whatever the node ids, and a value for an input only the user's
workflow has (`--set cfg=2.5`) reaches that node too. Checked on what the real server ran (its /history), through
`python -m comfyui_icedit.runner.run_icedit` as a user runs it, on the smoke-test models."""
from __future__ import annotations

import json

from PIL import Image

from comfyui_icedit.runner import items
from icedit_testing.server_runs import load_workflow, run_main_job

OFFSET = 100  # every node id moved: the declaration, not a node type or a fixed id, says where a value goes


def renumbered_basic_workflow() -> dict:
    """The basic workflow with every node id + OFFSET, and the KSampler's cfg declared as a setting of its own."""
    workflow = load_workflow("icedit_basic.json")
    for node in workflow["nodes"]:
        node["id"] += OFFSET
    for link in workflow["links"]:  # [link id, source id, source slot, target id, target slot, type]
        link[1] += OFFSET
        link[3] += OFFSET
    workflow["last_node_id"] += OFFSET
    declared = workflow["extra"]["icedit"]["inputs"]
    for targets in declared.values():
        for target in targets:
            target["node"] += OFFSET
    [sampler] = [node["id"] for node in workflow["nodes"] if node["type"] == "KSampler"]
    declared["cfg"] = [{"node": sampler, "input": "cfg"}]
    return workflow


def ran_prompts(server) -> list[dict]:
    """Every prompt the server has run (its /history): entry["prompt"] is [number, id, prompt, extra, outputs]."""
    return [entry["prompt"][2] for entry in server.get_json("/history").values()]


def test_a_users_workflow_with_declared_inputs_runs_under_batch(comfy_server, tmp_path):
    workflow_path = tmp_path / "my_workflow.json"
    workflow_path.write_text(json.dumps(renumbered_basic_workflow()), encoding="utf-8")
    Image.new("RGB", (40, 32), (200, 60, 30)).save(tmp_path / "photo.png")
    manifest = tmp_path / "edits.jsonl"
    manifest.write_text(json.dumps({"image": "photo.png", "instruction": "make it blue, declared", "id": "mine",
                                    "seed": 913}) + "\n", encoding="utf-8")
    output = tmp_path / "out"
    common = ["--server", comfy_server.url, "--smoke-test", "--steps", "1", "--batch", manifest,
              "--workflow", workflow_path, "--output", output]

    result = run_main_job(*common, "--set", "cfg=2.5")
    assert result.returncode == 0, result.stdout + result.stderr
    [entry] = items.Ledger(str(output)).state.values()
    assert entry["status"] == "ok" and entry["workflow"] == str(workflow_path)
    assert sorted(entry["outputs"]) == ["mine_comparison.png", "mine_edited.png"]
    [ran] = [prompt for prompt in ran_prompts(comfy_server)
             if prompt.get(str(107), {}).get("inputs", {}).get("instruction") == "make it blue, declared"]
    sampler = ran[str(110)]
    assert sampler["class_type"] == "KSampler"
    assert (sampler["inputs"]["cfg"], sampler["inputs"]["seed"], sampler["inputs"]["steps"]) == (2.5, 913, 1)
    assert ran[str(102)]["inputs"]["panel_width"] == 64  # the smoke default, on the node the declaration names

    # The --set value is part of what the edit is made from: another value is another edit, refused over this one.
    again = run_main_job(*common, "--set", "cfg=3")
    assert again.returncode == 1, again.stdout + again.stderr
    assert "made from another image or settings" in again.stdout
    same = run_main_job(*common, "--set", "cfg=2.5")
    assert same.returncode == 0 and "1 already done" in same.stdout, same.stdout + same.stderr

    # A value for an input the workflow does not declare: refused, naming it and what the workflow declares.
    typo = run_main_job(*common, "--set", "cgf=2.5", "--output", tmp_path / "typo")
    assert typo.returncode == 1, typo.stdout + typo.stderr
    assert "--set cgf: the" in typo.stdout and "declares no such input" in typo.stdout and "cfg" in typo.stdout
