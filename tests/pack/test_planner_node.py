"""The ICEdit Plan Instructions node in-process, with the rules and with the API judge on a loopback server."""
from __future__ import annotations

import comfy.model_management
import pytest
import torch

from comfyui_icedit.icedit_core import planner, prompts
from comfyui_icedit.icedit_core.judge.heuristic import HeuristicJudge
from comfyui_icedit.icedit_core.judge.protocol import JudgeError
from comfyui_icedit.nodes.judge import ICEditVLMJudgeAPI
from comfyui_icedit.nodes.planner import ICEditPlanInstructions
from icedit_testing.chat_server import ChatServer


def test_a_rules_plan_is_one_instruction_per_line_for_multi_turn():
    plan = planner.plan("make the sky red, and add a kite. Then make it a watercolor.")
    assert plan.method == "rules" and plan.note == "rules: split into 3 edits"
    assert plan.as_text() == "make the sky red\nadd a kite\nmake it a watercolor"
    assert prompts.split_instructions(plan.as_text()) == plan.steps  # what ICEditMultiTurn reads
    single = planner.plan("add a cat and a dog")
    assert single.steps == ["add a cat and a dog"] and "kept as one edit" in single.note


def test_the_schema_has_tooltips_everywhere():
    schema = ICEditPlanInstructions.define_schema()
    assert schema.category == "ICEdit" and schema.display_name == "ICEdit Plan Instructions"
    assert [spec.id for spec in schema.inputs] == ["instruction", "method", "judge", "image"]
    assert [spec.id for spec in schema.outputs] == ["plan", "steps", "note"]
    assert all(spec.tooltip for spec in schema.inputs + schema.outputs)
    assert schema.is_output_node  # runs alone, to check a plan before wiring it
    schema.validate()


def test_the_node_with_rules():
    output = ICEditPlanInstructions.execute("make the sky red and add a kite; then make it snow", "rules")
    plan, steps, note = output.result
    assert plan == "make the sky red\nadd a kite\nmake it snow" and steps == 3 and note == "rules: split into 3 edits"
    shown = output.ui.as_dict()["text"][0]
    assert shown.startswith(plan) and note in shown
    assert prompts.split_instructions(plan) == ["make the sky red", "add a kite", "make it snow"]


def test_the_node_with_the_api_judge_shows_the_first_source_image():
    source = torch.rand(2, 24, 32, 3, generator=torch.Generator().manual_seed(0))
    with ChatServer([(200, "1. make the sky red\n2. add a kite", 0)]) as server:
        judge = ICEditVLMJudgeAPI.execute(server.url, "m", "", 10.0, 0).result[0]
        output = ICEditPlanInstructions.execute("sky red, kite", "judge", judge=judge, image=source)
    plan, steps, note = output.result
    assert plan == "make the sky red\nadd a kite" and steps == 2
    assert note.startswith("model: 2 edits") and "source image" in note
    assert [request["path"] for request in server.requests] == ["/v1/models", "/v1/chat/completions"]  # check first
    content = server.requests[1]["body"]["messages"][0]["content"]
    assert "attached image" in content[0]["text"]
    assert [part["type"] for part in content] == ["text", "image_url"]  # one image: the batch's first


def test_the_node_falls_back_to_rules_when_the_api_answer_is_unreadable():
    with ChatServer([(200, "Sounds like a lovely picture!", 0)]) as server:
        judge = ICEditVLMJudgeAPI.execute(server.url, "m", "", 10.0, 0).result[0]
        output = ICEditPlanInstructions.execute("make the sky red and add a kite", "judge", judge=judge)
    plan, steps, note = output.result
    assert plan == "make the sky red\nadd a kite" and steps == 2
    assert "fell back to rules" in note and "Sounds like a lovely picture!" in note
    assert note in output.ui.as_dict()["text"][0]


def test_a_cancel_stops_the_node_before_the_model_is_asked():
    with ChatServer([(200, "1. make the sky red", 0)]) as server:
        judge = ICEditVLMJudgeAPI.execute(server.url, "m", "", 10.0, 0).result[0]
        comfy.model_management.interrupt_current_processing(True)
        try:
            with pytest.raises(comfy.model_management.InterruptProcessingException):
                ICEditPlanInstructions.execute("make the sky red", "judge", judge=judge)
        finally:
            comfy.model_management.interrupt_current_processing(False)
    assert [request["path"] for request in server.requests] == ["/v1/models"]  # checked, never asked


def test_an_unreachable_api_judge_is_a_clear_error():
    with ChatServer([]) as server:
        url = server.url
    judge = ICEditVLMJudgeAPI.execute(url, "m", "", 10.0, 0).result[0]
    with pytest.raises(JudgeError, match="cannot reach the judge endpoint"):
        ICEditPlanInstructions.execute("make the sky red and add a kite", "judge", judge=judge)


def test_the_heuristic_judge_cannot_plan():
    with pytest.raises(ValueError, match=r"heuristic judge has no model to ask.*choose method 'rules'"):
        ICEditPlanInstructions.execute("make the sky red and add a kite", "judge", judge=HeuristicJudge())
    with pytest.raises(ValueError, match="method 'judge' needs a judge"):
        ICEditPlanInstructions.execute("make the sky red and add a kite", "judge")
    # With the rules, a connected judge is simply not used.
    assert ICEditPlanInstructions.execute("add a kite", "rules", judge=HeuristicJudge()).result[1] == 1


@pytest.mark.parametrize("method", ["rules", "judge"])
def test_an_empty_instruction_is_a_clear_error(method):
    with pytest.raises(ValueError, match="instruction is empty"):
        ICEditPlanInstructions.execute("  \n ", method, judge=HeuristicJudge())
