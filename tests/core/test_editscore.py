"""EditScore as a judge through the OpenAI-compatible API (a vLLM server serving the reward model): its prompts, its
0-25 scores on the pack's 0-10, several sampled passes averaged, unreadable answers ranking last."""
from __future__ import annotations

import math

import pytest

from comfyui_icedit.icedit_core import early_filter as ef
from comfyui_icedit.icedit_core.judge import editscore
from comfyui_icedit.icedit_core.judge.openai_api import OpenAICompatibleJudge
from icedit_testing.chat_server import ChatServer, images


def answer(first, second, why="fine"):
    return f'{{"reasoning": "{why}", "score": [{first}, {second}]}}'


def judge_for(server, passes=1):
    return OpenAICompatibleJudge(server.url, "editscore", scoring="editscore", passes=passes, sleep=lambda s: None)


def test_the_prompts_are_editscores_on_a_0_to_25_scale():
    semantic = editscore.semantic_consistency("  make the sky red ")
    assert semantic.startswith("You are a professional digital artist.") and "Two images will be provided" in semantic
    assert "From scale 0 to 25" in semantic and "Editing instruction: make the sky red" in semantic
    assert "10" not in semantic  # every 10 of the rule became 25, as EditScore's own replace does
    quality = editscore.perceptual_quality()
    assert "image naturalness" in quality and "A second score from 0 to 25" in quality and "10" not in quality
    assert "Editing instruction" not in quality


def test_one_pass_brings_the_25_point_scores_to_ten_and_takes_the_geometric_mean():
    with ChatServer([(200, answer(20, 15), 0), (200, answer(25, 20), 0)]) as server:
        original, edit, _ = images()
        scores = judge_for(server).score(original, edit, "make the sky red")
    assert scores["editing_success"] == 8.0 and scores["over_editing"] == 6.0
    assert scores["semantic_consistency"] == 6.0 and scores["perceptual_quality"] == 8.0  # the minima, x 10 / 25
    assert scores["overall"] == pytest.approx(math.sqrt(6.0 * 8.0)) and scores["passes"] == "1 of 1 readable"
    semantic_request, quality_request = (r["body"] for r in server.requests)
    assert len(semantic_request["messages"][0]["content"]) == 3  # the prompt, the source, the result
    assert len(quality_request["messages"][0]["content"]) == 2  # the prompt, the result alone
    assert "From scale 0 to 25" in semantic_request["messages"][0]["content"][0]["text"]
    assert (semantic_request["temperature"], semantic_request["seed"]) == (0.7, 42)


def test_passes_are_sampled_with_their_own_seeds_and_averaged_skipping_an_unreadable_one():
    script = [(200, answer(25, 25), 0), (200, answer(25, 25), 0),     # pass 1: SC 10, PQ 10
              (200, answer(10, 5), 0), (200, answer(20, 25), 0),      # pass 2: SC 2, PQ 8
              (200, "I cannot rate this.", 0), (200, answer(1, 1), 0)]  # pass 3: unreadable, left out
    with ChatServer(script) as server:
        original, edit, _ = images()
        scores = judge_for(server, passes=3).score(original, edit, "add a hat")
    assert [r["body"]["seed"] for r in server.requests] == [42, 42, 43, 43, 44, 44]
    assert scores["semantic_consistency"] == pytest.approx((10 + 2) / 2)
    assert scores["overall"] == pytest.approx((10 + math.sqrt(2 * 8)) / 2)  # the mean of each pass's overall
    assert scores["passes"] == "2 of 3 readable"


def test_scores_outside_the_range_or_without_two_numbers_are_unreadable():
    assert editscore.one_pass(answer(30, 20), answer(20, 20)) is None  # 30 > 25
    assert editscore.one_pass('{"score": [12]}', answer(20, 20)) is None
    assert editscore.one_pass("score: [12, 24]", "[25, 25]")["semantic_consistency"] == pytest.approx(4.8)
    assert editscore.average([None, None]) is None
    with pytest.raises(ValueError, match="passes = 0"):
        editscore.score(lambda *a: "", None, None, "x", passes=0)


def test_an_unreadable_edit_ranks_last_and_pairwise_compares_by_score():
    with ChatServer([(200, "no idea", 0), (200, "no idea", 0),
                     (200, answer(5, 5), 0), (200, answer(5, 5), 0),
                     (200, answer(20, 20), 0), (200, answer(20, 20), 0)]) as server:
        original, edit, other = images()
        judge = judge_for(server)
        scores = [judge.score(original, edit, "x") for _ in range(3)]
    assert scores[0] is None and ef.best_by_score(scores).winner == 2
    with ChatServer([(200, answer(5, 5), 0), (200, answer(5, 5), 0),
                     (200, answer(20, 20), 0), (200, answer(20, 20), 0)]) as server:
        choice, reason = judge_for(server).compare(original, edit, other, "x")
    assert choice == 2 and "EditScore overall 2.00 vs 8.00" in reason
    with ChatServer([(200, answer(5, 5), 0), (200, answer(5, 5), 0), (200, "?", 0), (200, "?", 0)]) as server:
        choice, _ = judge_for(server).compare(original, edit, other, "x")
    assert choice == 1  # the unreadable challenger never wins


def test_viescore_stays_greedy_and_a_bad_scoring_name_is_refused():
    with ChatServer([(200, '{"score": [8, 9]}', 0), (200, '{"score": [7, 6]}', 0)]) as server:
        original, edit, _ = images()
        OpenAICompatibleJudge(server.url, "m").score(original, edit, "x")
    assert server.requests[0]["body"]["temperature"] == 0 and "seed" not in server.requests[0]["body"]
    with pytest.raises(ValueError, match="scoring 'edit-score'"):
        OpenAICompatibleJudge("http://127.0.0.1:1/v1", "m", scoring="edit-score")
