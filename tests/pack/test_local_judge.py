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


@pytest.fixture(scope="module")
def lora_folder(vlm_root):
    """A tiny random Qwen2.5-VL (EditScore's base family) and a random LoRA on its attention (q, v), saved as a PEFT
    folder beside it: EditScore's layout."""
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2_5_VLForConditionalGeneration

    from comfyui_icedit.devtools.smoke_models import save_tiny_qwen25_vl

    base = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        save_tiny_qwen25_vl(str(vlm_root / "org" / "tiny-qwen2.5-vl")))
    torch.manual_seed(11)  # init_lora_weights=False: both LoRA matrices random, so the LoRA changes the output
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(str(vlm_root / "org" / "tiny-editscore-lora"))
    return "org/tiny-editscore-lora"


def next_token_logits(judge, image):
    from comfyui_icedit.icedit_core.images import to_pil

    model = judge.load()
    content = [{"type": "image"}, {"type": "text", "text": "Rate the edit."}]
    text = judge.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                               tokenize=False)
    with torch.no_grad():
        return model(**judge.processor(text=[text], images=[to_pil(image)], return_tensors="pt")).logits[0, -1]


def test_a_lora_folder_is_listed_merged_and_changes_the_answers_logits(vlm_root, lora_folder):
    folders = judge_nodes.vlm_lora_folders()
    assert folders[0] == "none" and lora_folder in folders
    assert lora_folder not in judge_nodes.vlm_folders()  # a LoRA is not a model to judge with on its own
    plain = judge_nodes.ICEditVLMJudgeLocal.execute("org/tiny-qwen2.5-vl", "float32", 8).result[0]
    tuned = judge_nodes.ICEditVLMJudgeLocal.execute("org/tiny-qwen2.5-vl", "float32", 8, lora_folder, "editscore",
                                                    2).result[0]
    image = torch.rand(40, 56, 3, generator=torch.Generator().manual_seed(1))
    base_logits, tuned_logits = next_token_logits(plain, image), next_token_logits(tuned, image)
    assert (base_logits - tuned_logits).abs().max() > 1e-3  # the LoRA reached the model
    assert not any("lora" in name for name, _ in tuned.model.named_modules())  # merged: a plain transformers model
    assert tuned.name == "local, EditScore" and tuned.passes == 2
    # EditScore's passes are sampled: the same seed gives the same answer, and the judge always has an outcome.
    assert tuned.ask([image], "Rate the edit.", seed=5) == tuned.ask([image], "Rate the edit.", seed=5)
    scores = tuned.score(image, image, "make it red")
    assert scores is None or (0 <= scores["overall"] <= 10 and scores["passes"].endswith("of 2 readable"))


def test_a_lora_that_is_not_a_peft_folder_or_fits_another_model_is_a_clear_error(vlm_root, tmp_path):
    model = str(vlm_root / "org" / "tiny-qwen2-vl")
    with pytest.raises(JudgeError, match="has no adapter_config.json"):
        LocalVLMJudge(model, adapter_folder=str(tmp_path))
    (tmp_path / "adapter_config.json").write_text(
        '{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["no_such_proj"], "task_type": null}')
    judge = LocalVLMJudge(model, adapter_folder=str(tmp_path))
    with pytest.raises(JudgeError, match=rf"cannot apply the LoRA in {tmp_path} to the model in .*tiny-qwen2-vl"):
        judge.load()
