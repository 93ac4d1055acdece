"""A refusal that only a real ComfyUI server can make: a node's ValueError while the prompt runs. The runner's
engine in this process against the session's server with the pack and the smoke-test models (1 step)."""
from __future__ import annotations

import json
import os

from comfyui_icedit.runner import engine, items
from PIL import Image


def test_a_node_refusing_the_items_value_fails_once_and_is_not_retried(comfy_server, tmp_path):
    """Found: --panel-width 100 (ICEdit Diptych takes multiples of 16) ran the item three times (--retries 2)
    before it failed, each time to the same ValueError. A server death or a timeout is still retried
    (tests/system/test_batch.py)."""
    source = tmp_path / "photo.png"
    Image.new("RGB", (80, 60), (90, 140, 200)).save(source)
    output = tmp_path / "out"
    lines = []
    config = engine.RunConfig(output=str(output), servers=[comfy_server.url], smoke_test=True, steps=1,
                              panel_width=100, retries=2, quiet=True)
    summary = engine.run(config, items.from_edit_pairs([(str(source), "make the sky red")]), log=lines.append)
    assert summary.failed == 1 and summary.edited == 0
    assert not any(line.startswith("retrying") for line in lines), lines
    attempts = (output / "attempts.log").read_text().splitlines()
    assert len(attempts) == 1, attempts
    [entry] = [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]
    assert entry["status"] == "failed" and "\n" not in entry["error"]
    assert "ICEditDiptych" in entry["error"] and "ValueError: panel width 100" in entry["error"], entry["error"]
    assert sorted(os.listdir(output)) == ["attempts.log", "results.jsonl"]
