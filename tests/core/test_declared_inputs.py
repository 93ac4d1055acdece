"""Workflows declare what a run may set (extra.icedit.inputs) and the runner reads only that: the shipped files'
declarations, a workflow without one refused naming its file and how to declare, values set on the declared
nodes only, output kinds from the saving node, the settings table behind the options and columns, and the typed
path of an item (Job -> EditRequest -> Outcome) through pickling as Ray does it. No ComfyUI, no server."""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from comfyui_icedit.runner import engine, items, prompt as prompts, run_icedit, settings
from icedit_testing import REPO

SHIPPED_SETTINGS = {"image", "video", "instruction", "seed", "steps", "panel_width", "candidates", "early_steps",
                    "video_noise", "frames_per_batch", "video_carry"}


def shipped(name: str) -> dict:
    with open(os.path.join(REPO, "workflows", f"icedit_{name}.json"), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.mark.parametrize("name", sorted(prompts.WORKFLOWS))
def test_every_shipped_workflow_declares_its_inputs_on_nodes_it_has(name):
    workflow = shipped(name)
    declared = prompts.declared_inputs(workflow, name)
    assert set(declared) <= SHIPPED_SETTINGS and "instruction" in declared
    is_video = name.endswith("video")  # video, kontext_video
    assert ("video" in declared) == is_video and ("image" in declared) == (not is_video)
    assert ("video_carry" in declared) == is_video  # the runner can edit its clips in segments
    nodes = {str(node["id"]): node for node in workflow["nodes"]}
    for setting, targets in declared.items():
        for node_id, input_name in targets:
            node = nodes[node_id]  # a node of this file
            linked = [i for i in node.get("inputs", []) if i["name"] == input_name and i.get("link") is not None]
            assert not linked, f"{name}: {setting} is declared on {node_id}.{input_name}, which a link feeds"
    assert ("candidates" in declared) == name.endswith("early_filter")  # ICEdit's, Kontext's and Qwen's
    if name.endswith("compound"):  # the plan feeds Multi-Turn's instructions: the instruction goes to the plan
        assert [nodes[n]["type"] for n, _ in declared["instruction"]] == ["ICEditPlanInstructions"]


def test_a_workflow_without_a_declaration_is_refused_naming_the_file_and_how_to_declare(tmp_path, capsys):
    workflow = shipped("basic")
    del workflow["extra"]["icedit"]
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(workflow), encoding="utf-8")
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    code = run_icedit.main(["--edit", str(tmp_path / "a.png"), "red", "--workflow", str(path),
                            "--output", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == 2
    assert str(path) in error and "does not declare which inputs a run may set" in error
    assert '"extra": {"icedit": {"inputs": {"image": [{"node": 1, "input": "image"}]' in error


def test_a_malformed_or_too_small_declaration_is_refused_naming_the_setting(tmp_path):
    with pytest.raises(prompts.PromptError, match=r"mine.json: extra.icedit.inputs.seed = .*each setting takes"):
        prompts.declared_inputs({"extra": {"icedit": {"inputs": {"seed": {"node": 3}}}}}, "mine.json")
    workflow = shipped("basic")
    workflow["extra"]["icedit"]["inputs"] = {"seed": [{"node": 10, "input": "seed"}]}
    path = tmp_path / "seed_only.json"
    path.write_text(json.dumps(workflow), encoding="utf-8")
    with pytest.raises(engine.RunError, match="a run needs instruction and image"):
        engine.run(engine.RunConfig(output=str(tmp_path / "out"), workflow=str(path), smoke_test=True), [])


def test_a_workflow_that_is_no_file_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_icedit.main(["--workflow", str(tmp_path / "nothing.json"), "--output", str(tmp_path)])
    assert "is neither a shipped workflow" in capsys.readouterr().err


def api_prompt() -> prompts.ApiPrompt:
    nodes = {"5": {"class_type": "KSampler", "inputs": {"seed": 1, "cfg": 1.0, "model": ["4", 0]}},
             "6": {"class_type": "KSampler", "inputs": {"seed": 1}},
             "9": {"class_type": "ICEditSaveImage", "inputs": {"filename_prefix": "ICEdit/edited", "images": ["8", 0]}},
             "12": {"class_type": "SaveImage", "inputs": {"filename_prefix": "before_after", "images": ["8", 1]}}}
    return prompts.ApiPrompt(nodes, {"seed": [("5", "seed")], "cfg": [("5", "cfg")], "model": [("5", "model")]})


def test_values_go_to_the_declared_nodes_only():
    prompt = api_prompt()
    edited = prompts.with_inputs(prompt, seed=7, cfg=2.5, steps=None)
    assert edited["5"]["inputs"]["seed"] == 7 and edited["5"]["inputs"]["cfg"] == 2.5
    assert edited["6"]["inputs"]["seed"] == 1  # another KSampler: not declared, not touched
    assert prompt["5"]["inputs"]["seed"] == 1  # a copy
    assert edited.inputs == prompt.inputs  # the copy still knows where values go
    with pytest.raises(prompts.PromptError, match=r"declares no input 'steps' \(it declares: cfg, model, seed\)"):
        prompts.with_inputs(prompt, steps=3)
    with pytest.raises(prompts.PromptError, match="linked to another node"):
        prompts.with_inputs(prompt, model="x")


def test_an_outputs_kind_is_its_saving_nodes_not_its_file_names():
    assert prompts.output_kinds(api_prompt()) == {"9": "edited", "12": "before_after"}


def test_each_setting_gives_an_option_and_the_manifest_columns():
    args = run_icedit.parser().parse_args(["--panel-width", "128", "--noise", "shared", "--set", "cfg=2.5",
                                           "--set", "sampler_name=euler", "--set", "flag=true"])
    assert (args.panel_width, args.video_noise, args.seed) == (128, "shared", None)
    assert dict(map(settings.parse_assignment, args.extra_inputs)) == {"cfg": 2.5, "sampler_name": "euler",
                                                                      "flag": True}
    assert [name for name in items.MANIFEST_COLUMNS if name in settings.BY_NAME] == ["seed", "steps", "segment_frames"]
    config = engine.RunConfig(output="out", steps=3)
    assert (config.steps, config.seed, config.frames_per_batch) == (3, None, None)
    with pytest.raises(settings.SettingError, match="has its own option, --seed"):
        settings.parse_assignment("seed=3")
    with pytest.raises(settings.SettingError, match="write NAME=VALUE"):
        settings.parse_assignment("cfg")


def test_set_is_refused_for_a_shipped_workflow(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_icedit.main(["--set", "cfg=2", "--output", str(tmp_path)])
    assert "--set is for the inputs your own --workflow file declares" in capsys.readouterr().err


def test_a_job_plans_once_and_its_request_and_outcome_travel_as_ray_pickles_them(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    job = items.Job(id="a", source=str(path), where="#1", workflow="basic", upload_as="image",
                    inputs={"instruction": "red", "seed": 3}, settings={"instruction": "red", "seed": 3}, key="k")
    request = pickle.loads(pickle.dumps(job.request(timeout=5.0)))
    assert (request.id, request.upload_as, request.inputs, request.extension) == ("a", "image",
                                                                                  {"instruction": "red", "seed": 3},
                                                                                  ".png")
    assert request.upload == path.read_bytes()
    outcome = items.Outcome(id="a", worker="w1", status="ok",
                            outputs=[items.Output(kind="edited", node="13", filename="edited_00001_.png", data=b"x")])
    assert pickle.loads(pickle.dumps(outcome)) == outcome and outcome.ok


def test_the_ledger_writes_ok_failed_and_refused_lines_with_the_keys_old_ledgers_have(tmp_path):
    job = items.Job(id="a", source="/a.png", where="#1", workflow="basic", upload_as="image",
                    inputs={}, settings={"instruction": "red", "seed": 3}, key="k")
    ledger = items.Ledger(str(tmp_path))
    ledger.record_ok(job, items.Outcome(id="a", worker="w1", status="ok", texts=["report"], seconds=1.23456,
                                        executor_seconds=1.0), ["a_edited.png"])
    ledger.record_failed(job, "boom", worker="w2", seconds=2.0)
    ledger.record_refused(items.Item(id="b", image="/b.png", instruction="blue", where="#2"), "#2: bad", 42, "moe")
    lines = [json.loads(line) for line in open(tmp_path / "results.jsonl", encoding="utf-8")]
    assert [sorted(line) for line in lines] == [
        sorted(["id", "status", "outputs", "key", "image", "instruction", "seed", "workflow", "worker", "seconds",
                "executor_seconds", "error", "report", "time"]),
        sorted(["id", "status", "outputs", "key", "image", "instruction", "seed", "workflow", "worker", "seconds",
                "error", "time"]),
        sorted(["id", "status", "error", "image", "instruction", "seed", "workflow", "outputs", "worker", "seconds",
                "time"])]
    assert (lines[0]["seconds"], lines[0]["seed"], lines[0]["instruction"]) == (1.235, 3, "red")
    assert items.Ledger(str(tmp_path)).state["a"]["status"] == "failed"
