"""The OpenAI-compatible judge against a small chat-completions server on 127.0.0.1 (bounded requests only)."""
from __future__ import annotations

import json
import os
import time

import pytest

from comfyui_icedit.icedit_core.judge.openai_api import OpenAICompatibleJudge
from comfyui_icedit.icedit_core.judge.protocol import JudgeError
from icedit_testing import REPO
from icedit_testing.chat_server import ChatServer, images


def judge_for(server, **kwargs):
    kwargs.setdefault("sleep", lambda seconds: None)
    return OpenAICompatibleJudge(server.url, "qwen2.5vl:7b", **kwargs)


def test_a_pairwise_question_and_its_answer():
    with ChatServer([(200, "Image 2 is better: the sky is red.", 0)]) as server:
        original, first, second = images()
        choice, reason = judge_for(server, api_key="secret-value").compare(original, first, second, "make the sky red")
    assert choice == 2 and "sky is red" in reason
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer secret-value"
    content = request["body"]["messages"][0]["content"]
    assert request["body"]["model"] == "qwen2.5vl:7b"
    assert "make the sky red" in content[0]["text"] and "Answer with 1 or 2" in content[0]["text"]
    assert [part["image_url"]["url"][:22] for part in content[1:]] == ["data:image/png;base64,"] * 3


def test_scores_take_two_questions():
    with ChatServer([(200, '{"score": [8, 9], "reasoning": "done"}', 0),
                     (200, '```json\n{"score": ["7", "6"]}\n```', 0)]) as server:
        original, edit, _ = images()
        scores = judge_for(server).score(original, edit, "add a hat")
    assert scores["semantic_consistency"] == 8 and scores["perceptual_quality"] == 6
    assert "Authorization" not in server.requests[0]["headers"]  # no key, no header


def test_http_500_is_retried_with_backoff():
    waits = []
    with ChatServer([(500, None, 0), (503, None, 0), (200, "1", 0)]) as server:
        choice, _ = judge_for(server, retries=3, backoff=0.5, sleep=waits.append).compare(*images(), "x")
    assert choice == 1 and len(server.requests) == 3
    assert sum(waits) == pytest.approx(0.5 + 1.0) and max(waits) <= 0.2  # backoff waited in short slices


def test_a_timeout_becomes_a_clear_error_after_the_retries():
    with ChatServer([(503, None, 0), (200, "1", 1.5)]) as server:  # a quick failure, then an answer too slow
        with pytest.raises(JudgeError, match=r"did not answer after 2 tries within the 1.2 s timeout .*timed out"):
            judge_for(server, timeout=1.2, retries=1, backoff=0.1).compare(*images(), "x")


def test_all_tries_together_stay_within_the_timeout():
    with ChatServer([(200, "1", 3.0)] * 5) as server:  # every answer hangs longer than the whole budget
        started = time.monotonic()
        with pytest.raises(JudgeError, match=r"within the 1.5 s timeout"):
            OpenAICompatibleJudge(server.url, "m", timeout=1.5, retries=10, backoff=0.2).compare(*images(), "x")
        assert time.monotonic() - started < 2.5  # not 11 tries x 1.5 s


def test_an_interrupt_is_honoured_while_a_request_hangs():
    class Interrupted(Exception):
        pass

    started = time.monotonic()

    def check_interrupt():  # ComfyUI's cancel button, pressed half a second in
        if time.monotonic() - started > 0.5:
            raise Interrupted()

    with ChatServer([(200, "1", 5.0)]) as server:
        judge = OpenAICompatibleJudge(server.url, "m", timeout=60, check_interrupt=check_interrupt)
        with pytest.raises(Interrupted):
            judge.compare(*images(), "x")
        assert time.monotonic() - started < 1.5  # not the 5 s the answer takes, nor the 60 s timeout


def test_the_reachability_check():
    with ChatServer([]) as server:
        judge_for(server).check()  # GET /v1/models answers
        assert server.requests[-1]["path"] == "/v1/models"
        url = server.url
    with pytest.raises(JudgeError, match=r"cannot reach the judge endpoint .*Nothing was sampled"):
        OpenAICompatibleJudge(url, "m").check()
    with ChatServer([], models_status=404) as server:  # a server without /models is still there
        judge_for(server).check()
    with ChatServer([], models_status=401) as server:
        with pytest.raises(JudgeError, match="refused the API key"):
            judge_for(server, api_key="wrong").check()


def test_a_server_that_is_down_is_a_clear_error():
    with ChatServer([]) as server:
        url = server.url
    judge = OpenAICompatibleJudge(url, "m", retries=1, timeout=2, sleep=lambda s: None)
    with pytest.raises(JudgeError, match="is the server running"):
        judge.compare(*images(), "x")


def test_a_client_error_is_not_retried():
    with ChatServer([(401, None, 0), (200, "1", 0)]) as server:
        with pytest.raises(JudgeError, match="HTTP 401.*API key"):
            judge_for(server).compare(*images(), "x")
    assert len(server.requests) == 1


def test_a_garbage_answer_has_a_defined_outcome():
    with ChatServer([(200, "The quick brown fox.", 0)]) as server:
        choice, reason = judge_for(server).compare(*images(), "x")
    assert choice is None and "quick brown fox" in reason


def test_a_body_that_is_not_a_chat_completion_is_an_error():
    with ChatServer([(200, b"<html>proxy error</html>", 0)]) as server:
        with pytest.raises(JudgeError, match="not a chat completion"):
            judge_for(server).compare(*images(), "x")


def test_no_shipped_workflow_carries_a_key():
    for name in (n for n in os.listdir(os.path.join(REPO, "workflows")) if n.endswith(".json")):
        with open(os.path.join(REPO, "workflows", name), encoding="utf-8") as handle:
            text = handle.read()
        assert "sk-" not in text and "Bearer" not in text
        for node in json.loads(text)["nodes"]:
            if node["type"] == "ICEditVLMJudgeAPI":
                assert node["widgets_values"][2].isidentifier()  # the variable's name
