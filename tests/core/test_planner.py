"""Compound edit requests as single edits: the rule-based splitter, the reading of a planner model's answer and
the API planner against a loopback chat-completions server (pure icedit_core)."""
from __future__ import annotations

import pytest

from comfyui_icedit.icedit_core import planner
from comfyui_icedit.icedit_core.judge import prompts as judge_prompts
from comfyui_icedit.icedit_core.judge.openai_api import OpenAICompatibleJudge
from comfyui_icedit.icedit_core.judge.protocol import JudgeError
from icedit_testing.chat_server import ChatServer

SPLITS = [
    ("make the sky red and add a kite", ["make the sky red", "add a kite"]),
    ("Make the sky red. Add a kite!", ["Make the sky red", "Add a kite"]),
    ("make the sky red; add a kite\nremove the car", ["make the sky red", "add a kite", "remove the car"]),
    ("make the sky red, then add a kite, and then make it snow. After that, remove the car",
     ["make the sky red", "add a kite", "make it snow", "remove the car"]),
    ("add a hat, remove the glasses, and make it snow", ["add a hat", "remove the glasses", "make it snow"]),
    ("remove the man, and make the woman smile, and add a dog", ["remove the man", "make the woman smile",
                                                                 "add a dog"]),
    ("turn the photo into a black and white sketch and add a red balloon.",
     ["turn the photo into a black and white sketch", "add a red balloon"]),
    ("In the background, add a tree and make the sky red", ["In the background, add a tree", "make the sky red"]),
    ("First, make the sky red, then add a kite", ["make the sky red", "add a kite"]),
    ("1. make the sky red\n2. add a kite", ["make the sky red", "add a kite"]),
    ("- add a moon\n- make it night", ["add a moon", "make it night"]),
    ("Add a hat & remove the scarf", ["Add a hat", "remove the scarf"]),
    ("replace the cat with a dog and let it wag its tail", ["replace the cat with a dog", "let it wag its tail"]),
    ("change the season to winter and also add a snowman", ["change the season to winter", "add a snowman"]),
    ("give him a beard and paint the wall green", ["give him a beard", "paint the wall green"]),
    ("make the walls a light color and turn on the lamp", ["make the walls a light color", "turn on the lamp"]),
    ('write "Open" on the door and paint the door blue', ['write "Open" on the door', "paint the door blue"]),
    ("turn off the lights and light some candles", ["turn off the lights", "light some candles"]),
    ("add a table and chairs, and make the room brighter", ["add a table and chairs", "make the room brighter"]),
    ("put salt and pepper on the table and then remove the plate",
     ["put salt and pepper on the table", "remove the plate"]),
    ("make it a watercolor painting\n\n   \nadd a frame", ["make it a watercolor painting", "add a frame"]),
    ("Make the sky pink and purple, and put a cat and a dog on the grass.",
     ["Make the sky pink and purple", "put a cat and a dog on the grass"]),
    ("Make the sky red! Then add a kite? And remove the car.", ["Make the sky red", "add a kite", "remove the car"]),
    ("swap the red car for a blue one, delete the sign and insert a lamp post",
     ["swap the red car for a blue one", "delete the sign", "insert a lamp post"]),
    ("transform the house into a castle, and convert the photo to black and white",
     ["transform the house into a castle", "convert the photo to black and white"]),
    ("Finally, erase the watermark", ["erase the watermark"]),
    ("add a hat, and, then, remove the scarf", ["add a hat", "remove the scarf"]),
    ("Step 1: make it red\nStep 2: add a hat", ["make it red", "add a hat"]),
    ("open the window and close the door", ["open the window", "close the door"]),
    ("add a hat and make it red", ["add a hat", "make it red"]),  # "it" is left as written, not resolved
]


NOT_SPLIT = [
    "convert the photo to black and white",
    "add salt and pepper to the table",
    "add a cat and a dog",
    "make the sky pink and purple",
    "add a table and chairs",
    "make it look like a rock and roll poster",
    "put bread and butter on the plate",
    "add a brush and paint cans",  # a verb that is also a noun, with no object after it
    "add sandals and flip flops",
    "add a table and set of chairs",
    "add cookies and make-up",
    "add a hat, a scarf, and gloves",
    "give him a drink and a smile",
    "In the background, add a tree",  # an introductory phrase, one edit
    "next to the window, add a lamp",  # "next" as a place, not a sequence word
    'add a sign that says "stop, and turn around"',  # quotes are never split
    "add a cup of tea, e.g. green tea",  # an abbreviation's period
    "scale the logo by 1.5 times",
]


@pytest.mark.parametrize(("text", "expected"), SPLITS, ids=[text[:40] for text, _ in SPLITS])
def test_compound_requests_are_split(text, expected):
    assert planner.split_compound(text) == expected


@pytest.mark.parametrize("text", NOT_SPLIT, ids=[text[:40] for text in NOT_SPLIT])
def test_noun_phrases_and_single_edits_are_not_split(text):
    assert planner.split_compound(text) == [text]


def test_the_stated_limits_hold_as_stated():
    # The verb is not repeated: one edit (ICEdit gets both at once).
    assert planner.split_compound("make the sky red and the grass green") == ["make the sky red and the grass green"]
    # The clause before "and" does not start with an edit verb.
    assert planner.split_compound("the sky should be red and add a kite") == ["the sky should be red and add a kite"]
    # A verb that is not in EDIT_VERBS.
    assert "sprinkle" not in planner.EDIT_VERBS
    assert planner.split_compound("make the cake pink and sprinkle glitter on it") == [
        "make the cake pink and sprinkle glitter on it"]
    # "then" always splits, even where no edit follows it.
    assert planner.split_compound("make it red then blue") == ["make it red", "blue"]
    # The order is kept as written.
    assert planner.split_compound("add a frame. Make it a watercolor") == ["add a frame", "Make it a watercolor"]


def test_the_edit_verbs_are_a_visible_constant():
    asked = {"make", "add", "remove", "delete", "replace", "change", "turn", "put", "give", "set", "convert",
             "transform", "erase", "insert", "paint", "color", "colour", "swap", "move", "let", "have", "place",
             "apply"}
    assert asked <= planner.EDIT_VERBS
    assert planner.NOUN_LIKE_VERBS <= planner.EDIT_VERBS


def test_nothing_to_split_gives_nothing_and_an_empty_plan_is_refused():
    assert planner.split_compound("") == [] and planner.split_compound(" \n ; . ") == []
    for empty in ("", "   ", "\n\t"):
        with pytest.raises(ValueError, match="instruction is empty"):
            planner.plan(empty)
    with pytest.raises(ValueError, match="nothing to plan"):
        planner.plan(" ; . ")


ANSWERS = [
    ("1. Make the sky red.\n2. Add a red kite.\n3) Make it a watercolor",
     ["Make the sky red", "Add a red kite", "Make it a watercolor"]),
    ("Here is the plan:\n\n1. make the sky red\n2. add a kite\n\nApply them in this order.",
     ["make the sky red", "add a kite"]),
    ("Step 1: make the sky red\nStep 2: add a kite", ["make the sky red", "add a kite"]),
    ("step 1. make the sky red\nSTEP 2 - add a kite", ["make the sky red", "add a kite"]),
    ("- make the sky red\n* add a kite\n\u2022 remove the car", ["make the sky red", "add a kite", "remove the car"]),
    ('["make the sky red", "add a kite"]', ["make the sky red", "add a kite"]),
    ('Sure!\n```json\n["make the sky red", "add a kite"]\n```', ["make the sky red", "add a kite"]),
    ('```\n{"steps": ["make the sky red", "add a kite"]}\n```', ["make the sky red", "add a kite"]),
    ('{"steps": ["make the sky red", "add a kite"]}', ["make the sky red", "add a kite"]),
    ('{"edits": [{"instruction": "make the sky red"}, {"instruction": "add a kite"}]}',
     ["make the sky red", "add a kite"]),
    ("1. **Make the sky red**\n   with warm sunset tones\n2. Add a kite",
     ["Make the sky red with warm sunset tones", "Add a kite"]),
    ("1. make the sky red\n   - keep the clouds\n2. add a kite", ["make the sky red", "add a kite"]),
    ("1. make the sky red 2. add a kite", ["make the sky red", "add a kite"]),
    ('1. "make the sky red"\n2. "add a kite"', ["make the sky red", "add a kite"]),
    ('1. add a sign reading ["Open"]\n2. make the sign red', ['add a sign reading ["Open"]', "make the sign red"]),
    ('Here you go: ["make the sky red", "add a kite"] - enjoy!', ["make the sky red", "add a kite"]),
]


UNREADABLE = [
    "The sky should be red and there should also be a kite.",  # prose, no list
    "[]",
    '{"steps": []}',
    "```json\n[]\n```",
    "",
    "   ",
    "1.\n2.",
    "It is 10:30 and the answer is 42.",
]


@pytest.mark.parametrize(("answer", "expected"), ANSWERS, ids=[answer[:30] for answer, _ in ANSWERS])
def test_answer_shapes_are_read(answer, expected):
    assert planner.parse_plan(answer) == expected


@pytest.mark.parametrize("answer", UNREADABLE, ids=[repr(answer[:30]) for answer in UNREADABLE])
def test_answers_without_steps_are_none(answer):
    assert planner.parse_plan(answer) is None


def test_the_planning_prompt():
    prompt = judge_prompts.plan_instructions("  make the sky red and add a kite \n")
    assert '"make the sky red and add a kite"' in prompt
    assert "numbered list" in prompt and "in the order" in prompt and "imperative" in prompt
    assert "nothing else" in prompt and "attached image" not in prompt
    assert "attached image" in judge_prompts.plan_instructions("x", with_image=True)


def test_a_model_plan_and_the_fallbacks_with_a_plain_callable():
    asked = []

    def ask(prompt):
        asked.append(prompt)
        return "1. make the sky red\n2. add a kite"

    plan = planner.plan("sky red + kite", ask)
    assert plan.steps == ["make the sky red", "add a kite"] and plan.method == "model" and plan.note == "model: 2 edits"
    assert "sky red + kite" in asked[0]
    long_prose = "I would rather not split this request, because " + "it is fine as it is " * 20
    fallback = planner.plan("make the sky red and add a kite", lambda prompt: long_prose)
    assert fallback.method == "rules" and fallback.steps == ["make the sky red", "add a kite"]
    assert "no readable list of steps" in fallback.note and "fell back to rules" in fallback.note
    assert long_prose[:100] in fallback.note and long_prose[:101] not in fallback.note


def api_judge(server):
    return OpenAICompatibleJudge(server.url, "qwen2.5vl:7b", timeout=10, retries=0, sleep=lambda seconds: None)


def api_plan(answer, text="make the sky red and add a kite"):
    with ChatServer([(200, answer, 0)]) as server:
        judge = api_judge(server)
        plan = planner.plan(text, lambda prompt: judge.ask([], prompt))
    return plan, server.requests


def test_the_api_planner_reads_a_numbered_list():
    plan, requests = api_plan("1. Make the sky red.\n2. Add a red kite in the sky.")
    assert plan.method == "model" and plan.steps == ["Make the sky red", "Add a red kite in the sky"]
    content = requests[0]["body"]["messages"][0]["content"]
    assert requests[0]["path"] == "/v1/chat/completions" and len(content) == 1  # the prompt, no image
    assert "make the sky red and add a kite" in content[0]["text"] and "numbered list" in content[0]["text"]


def test_the_api_planner_reads_a_json_array():
    plan, _ = api_plan('```json\n["make the sky red", "add a kite", "make it a watercolor"]\n```')
    assert plan.method == "model" and plan.steps == ["make the sky red", "add a kite", "make it a watercolor"]


def test_prose_from_the_api_falls_back_to_the_rules_with_a_note():
    plan, _ = api_plan("You could first change the sky's colour and later think about a kite.")
    assert plan.method == "rules" and plan.steps == ["make the sky red", "add a kite"]
    assert "no readable list" in plan.note and '"You could first change the sky' in plan.note


def test_zero_steps_from_the_api_fall_back_to_the_rules():
    plan, _ = api_plan('{"steps": []}')
    assert plan.method == "rules" and plan.steps == ["make the sky red", "add a kite"]
    assert "fell back to rules" in plan.note and '{"steps": []}' in plan.note


def test_an_api_that_refuses_is_an_error_not_a_silent_rules_plan():
    with ChatServer([(400, None, 0)]) as server:
        judge = api_judge(server)
        with pytest.raises(JudgeError, match="refused the request"):
            planner.plan("make the sky red and add a kite", lambda prompt: judge.ask([], prompt))
