"""ICEdit Judge: OpenAI-compatible API, the node: the key comes only from an environment variable."""
from __future__ import annotations

import pytest

from comfyui_icedit.nodes.judge import ICEditVLMJudgeAPI
from icedit_testing.chat_server import ChatServer, images


def test_the_node_reads_the_key_from_the_environment_only(monkeypatch):
    monkeypatch.setenv("ICEDIT_TEST_JUDGE_KEY", "sk-test-123")
    with ChatServer([(200, "2", 0)]) as server:
        judge = ICEditVLMJudgeAPI.execute(server.url, "m", "ICEDIT_TEST_JUDGE_KEY", 10.0, 0).result[0]
        assert "sk-test-123" not in repr(judge)
        assert judge.compare(*images(), "x")[0] == 2
    assert server.requests[0]["headers"]["Authorization"] == "Bearer sk-test-123"
    with pytest.raises(ValueError, match="NAME of an environment variable"):
        ICEditVLMJudgeAPI.execute(server.url, "m", "sk-test-123", 10.0, 0)
    schema = ICEditVLMJudgeAPI.define_schema()
    assert not [i.id for i in schema.inputs if "key" in i.id and i.id != "api_key_env"]
