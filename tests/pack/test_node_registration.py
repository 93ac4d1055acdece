"""The pack's nodes as ComfyUI registers them: valid schemas, a help page each, the smoke-test loader only on
request."""
from __future__ import annotations

import os

from icedit_testing import REPO


def pack_nodes():
    import asyncio

    from comfyui_icedit.nodes import comfy_entrypoint

    return asyncio.run(asyncio.run(comfy_entrypoint()).get_node_list())


def test_the_smoke_test_loader_is_registered_only_on_request(monkeypatch):
    from comfyui_icedit.icedit_core.model_files import SMOKE_NODES_ENV
    from comfyui_icedit.nodes import smoke_test

    assert SMOKE_NODES_ENV == smoke_test.SMOKE_NODES_ENV  # the runner and the pack name the same variable
    monkeypatch.delenv(SMOKE_NODES_ENV, raising=False)
    assert "ICEditSmokeTestCLIPLoader" not in {node.define_schema().node_id for node in pack_nodes()}
    monkeypatch.setenv(SMOKE_NODES_ENV, "1")
    assert "ICEditSmokeTestCLIPLoader" in {node.define_schema().node_id for node in pack_nodes()}


def test_every_node_schema_is_valid(monkeypatch):
    """What ComfyUI checks when it registers the pack (a failure there drops every node of the pack)."""
    monkeypatch.setenv("ICEDIT_SMOKE_TEST_NODES", "1")  # every node, the smoke-test loader included
    nodes = pack_nodes()
    assert len({node.define_schema().node_id for node in nodes}) == len(nodes)
    for node in nodes:
        node.define_schema().validate()


def test_every_node_has_a_doc_page(monkeypatch):
    monkeypatch.setenv("ICEDIT_SMOKE_TEST_NODES", "1")
    for node in pack_nodes():
        node_id = node.define_schema().node_id
        path = os.path.join(REPO, "web", "docs", f"{node_id}.md")
        assert os.path.isfile(path), f"no doc page for {node_id}"
        with open(path, encoding="utf-8") as handle:
            assert handle.read().strip(), f"{path} is empty"


def test_the_nodes_keep_comfyuis_range_checks():
    """ComfyUI skips its own min / max checks for the inputs a node's validate_inputs takes, and the pack's takes
    them all (**kwargs) for its combo check: the pack checks the ranges there too (an Early Filter steps of 500
    once went through and sampled 500 steps)."""
    from comfyui_icedit.nodes.edit import ICEditDiptych
    from comfyui_icedit.nodes.sampler import ICEditEarlyFilterSampler

    assert ICEditEarlyFilterSampler.validate_inputs(steps=28, early_steps=10, cfg=1.0, mode="resume") is True
    assert ICEditEarlyFilterSampler.validate_inputs(steps=500) == "steps = 500 is bigger than its maximum 200"
    assert ICEditEarlyFilterSampler.validate_inputs(candidates=0) == "candidates = 0 is smaller than its minimum 1"
    assert ICEditEarlyFilterSampler.validate_inputs(cfg=100.5) == "cfg = 100.5 is bigger than its maximum 100.0"
    assert ICEditDiptych.validate_inputs(panel_width=8192) == "panel_width = 8192 is bigger than its maximum 4096"
    assert ICEditEarlyFilterSampler.validate_inputs(mode="sideways").startswith("mode = 'sideways' is not one of")
