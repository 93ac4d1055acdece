"""Reading judges' answers: real-world shapes of pairwise and score answers, and VIEScore."""
from __future__ import annotations

import math

import pytest

from comfyui_icedit.icedit_core.judge import parsing
from comfyui_icedit.icedit_core.judge.protocol import viescore

PAIRWISE_ANSWERS = [
    ("1", 1),
    ("2", 2),
    ("2.", 2),
    ("**2**", 2),
    ("(1) The first edit keeps the background intact.", 1),
    ("1 - Edit 1 turns the sky red without touching the house.", 1),
    ("Answer: 2", 2),
    ("Final answer: **Image 1**", 1),
    ("My choice is edit 2, because it has fewer artifacts.", 2),
    ("Image 2 is better: the hat is red and the face is unchanged.", 2),
    ("Edit #1 follows the instruction more closely.", 1),
    ("I prefer the second edit; the first one blurs the face.", 2),
    ("I would choose image 1.", 1),
    ("The first edit is better since it preserves the dog.", 1),
    ("After comparing both, the second one looks more natural.", 2),
    ('{"answer": 2, "reason": "fewer artifacts"}', 2),
    ('```json\n{"choice": "Image 1", "reasoning": "keeps the layout"}\n```', 1),
    ("{'better': 'edit 2', 'explanation': 'sharper'}", 2),
    ('Sure! ```json\n{"winner": 1}\n```', 1),
    ("<think>Edit 1 changes the sky, edit 2 also the house... so 2 over-edits.</think>\n1", 1),
    ("Option 2 wins clearly.", 2),
]
UNREADABLE = ["", "   ", "Both edits are equally good.", "Neither follows the instruction.",
              "The images show a cat.", '{"answer": 3}', "Tie.", None]


@pytest.mark.parametrize("answer,expected", PAIRWISE_ANSWERS)
def test_pairwise_answers(answer, expected):
    choice, reason = parsing.parse_choice(answer)
    assert choice == expected, (answer, reason)
    assert isinstance(reason, str)


@pytest.mark.parametrize("answer", UNREADABLE)
def test_unreadable_pairwise_answers_give_none(answer):
    assert parsing.parse_choice(answer)[0] is None


SCORE_ANSWERS = [
    ('{"score": [8, 7], "reasoning": "ok"}', [8.0, 7.0]),
    ('```json\n{"score": [9, 6], "reasoning": "the sky is red"}\n```', [9.0, 6.0]),
    ('{"score": ["8", "7"], "reasoning": "strings"}', [8.0, 7.0]),
    ('{"score": ["8/10", "6.5/10"]}', [8.0, 6.5]),
    ("{'score': [7, 7], 'reasoning': 'python literal'}", [7.0, 7.0]),
    ('Here is my evaluation:\n{"scores": [3, 10], "reasoning": "barely edited"}', [3.0, 10.0]),
    ('{"editing_success": 8, "over_editing": 9, "reasoning": "fine"}', [8.0, 9.0]),
    ("score: [6, 4]", [6.0, 4.0]),
    ("Editing success 8/10, over-editing 9/10.", [8.0, 9.0]),
    ('<think>hmm</think>{"score": [10, 0]}', [10.0, 0.0]),
]


@pytest.mark.parametrize("answer,expected", SCORE_ANSWERS)
def test_score_answers(answer, expected):
    scores, _ = parsing.parse_scores(answer)
    assert scores == expected


@pytest.mark.parametrize("answer", ['{"score": [11, 5]}', '{"score": [5]}', "good job", '{"score": ["high", 3]}',
                                    "", '{"score": [7, 8, 9]}'])
def test_unreadable_scores_give_none(answer):
    assert parsing.parse_scores(answer)[0] is None


def test_viescore_is_the_geometric_mean_of_the_minima():
    scores = viescore([8, 6], [9, 4])
    assert scores["semantic_consistency"] == 6 and scores["perceptual_quality"] == 4
    assert scores["overall"] == pytest.approx(math.sqrt(24))
    assert viescore(None, [9, 4]) is None
