"""The local VLM judge on a tiny random-weight Qwen2-VL saved to a temporary models/vlm folder, through the node
and transformers' real generate path."""
from __future__ import annotations

import folder_paths
import pytest
import torch

from comfyui_icedit.devtools.smoke_models import save_tiny_qwen2_vl
from comfyui_icedit.icedit_core.judge.protocol import JudgeError
from comfyui_icedit.icedit_core.judge.local_vlm import LocalVLMJudge
from comfyui_icedit.nodes import judge as judge_nodes


@pytest.fixture(scope="module")
def vlm_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models") / "vlm"
    save_tiny_qwen2_vl(str(root / "org" / "tiny-qwen2-vl"))
    folder_paths.add_model_folder_path("vlm", str(root))
    return root


def test_the_folder_is_listed_and_the_judge_answers_through_generate(vlm_root):
    assert "org/tiny-qwen2-vl" in judge_nodes.vlm_folders()
    assert "org/tiny-qwen2-vl" in judge_nodes.ICEditVLMJudgeLocal.define_schema().inputs[0].options
    judge = judge_nodes.ICEditVLMJudgeLocal.execute("org/tiny-qwen2-vl", "float32", 6).result[0]
    generator = torch.Generator().manual_seed(0)
    original, first, second = (torch.rand(40, 56, 3, generator=generator) for _ in range(3))
    choice, reason = judge.compare(original, first, second, "make it red")
    assert choice in (None, 1, 2) and isinstance(reason, str)  # random weights: any answer, always an outcome
    assert judge.model is not None and judge.model.training is False
    scores = judge.score(original, first, "make it red")
    assert scores is None or 0 <= scores["overall"] <= 10
    # The model ran under ComfyUI's model management.
    assert judge.before_generate.patcher is not None and judge.before_generate.patcher.model.vlm is judge.model


def test_a_folder_without_a_model_is_a_clear_error(tmp_path):
    with pytest.raises(JudgeError, match="no config.json"):
        LocalVLMJudge(str(tmp_path))
    with pytest.raises(ValueError, match="no vlm model folder 'missing' under"):
        judge_nodes.vlm_path("missing")
