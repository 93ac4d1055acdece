"""Judge loaders: a local vision-language model, an OpenAI-compatible endpoint, or image statistics."""
from __future__ import annotations

import os

import comfy.model_management
import comfy.model_patcher
import torch
from comfy_api.latest import io

from ..icedit_core.judge.heuristic import HeuristicJudge
from ..icedit_core.judge.local_vlm import ADAPTER_CONFIG, LocalVLMJudge
from ..icedit_core.judge.openai_api import OpenAICompatibleJudge
from ..icedit_core.judge.protocol import SCORINGS, VIESCORE
from .hf_folders import model_folder_path, model_folders, register_folder
from .io_types import Judge
from .validation import ICEditNode

CATEGORY = "ICEdit/judge"

VLM_FOLDER = register_folder("vlm")  # models/vlm/; extra_model_paths.yaml may add more under "vlm"


def vlm_folders() -> list[str]:
    return model_folders(VLM_FOLDER)


def vlm_path(name: str) -> str:
    return model_folder_path(VLM_FOLDER, name)


NO_LORA = "none"


def vlm_lora_folders() -> list[str]:
    """LoRA folders for a judge (a PEFT adapter, e.g. EditScore's) under models/vlm/."""
    return [NO_LORA] + model_folders(VLM_FOLDER, ADAPTER_CONFIG)


class _ComfyMemory:
    """Puts the judge's model under ComfyUI's model management, so the sampler's model is offloaded while the
    judge runs and the judge is offloaded while sampling, as memory requires."""

    def __init__(self, device):
        self.device = device
        self.patcher = None

    def __call__(self, judge):
        if self.patcher is None or self.patcher.model.vlm is not judge.model:
            self.patcher = comfy.model_patcher.ModelPatcher(
                _Holder(judge.model), load_device=self.device,
                offload_device=comfy.model_management.unet_offload_device())
        comfy.model_management.load_models_gpu([self.patcher])


class _Holder(torch.nn.Module):
    """ModelPatcher sets `.device` on what it manages; transformers models have a read-only `device`."""

    def __init__(self, vlm):
        super().__init__()
        self.vlm = vlm


class ICEditVLMJudgeLocal(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditVLMJudgeLocal",
            display_name="ICEdit Judge: Local VLM",
            category=CATEGORY,
            description="A vision-language model from models/vlm/ (a Hugging Face folder such as "
                        "Qwen2.5-VL-7B-Instruct) judges edits for the Early Filter. Loaded on first use, under "
                        "ComfyUI's memory management.",
            inputs=[
                io.Combo.Input("model_folder", options=vlm_folders(),
                               tooltip="A folder under models/vlm/ with config.json, weights and processor files. "
                                       "The paper used Qwen2.5-VL-72B; 7B 'often misjudges'."),
                io.Combo.Input("dtype", options=["auto", "bfloat16", "float16", "float32"], default="auto",
                               tooltip="auto: bfloat16 on a GPU that supports it, else float32."),
                io.Int.Input("max_new_tokens", default=256, min=8, max=4096,
                             tooltip="Room for the answer and its short explanation."),
                # Optional, so the workflows saved before EditScore load unchanged.
                io.Combo.Input("lora_folder", options=vlm_lora_folders(), default=NO_LORA, optional=True,
                               tooltip="A LoRA for the judge model, as a PEFT folder under models/vlm/ "
                                       "(adapter_config.json): the EditScore reward model is Qwen2.5-VL-7B-Instruct "
                                       "with its LoRA. Merged into the weights when loaded; needs peft."),
                io.Combo.Input("scoring", options=list(SCORINGS), default=VIESCORE, optional=True,
                               tooltip="viescore: VIEScore's questions, 0-10, greedy. editscore: EditScore's "
                                       "questions, 0-25 brought to 0-10, sampled answers averaged over passes; "
                                       "two edits compared by their scores (use the Early Filter's absolute "
                                       "judge_mode)."),
                io.Int.Input("passes", default=1, min=1, max=16, optional=True,
                             tooltip="editscore: passes averaged per score, each with its own seed."),
            ],
            outputs=[Judge.Output("judge", display_name="judge", tooltip="For ICEditEarlyFilterSampler.")],
        )

    @classmethod
    def execute(cls, model_folder, dtype, max_new_tokens, lora_folder=NO_LORA, scoring=VIESCORE,
                passes=1) -> io.NodeOutput:
        device = comfy.model_management.get_torch_device()
        if dtype == "auto":
            chosen = torch.bfloat16 if comfy.model_management.should_use_bf16(device) else torch.float32
        else:
            chosen = getattr(torch, dtype)
        adapter = None if lora_folder == NO_LORA else model_folder_path(VLM_FOLDER, lora_folder, ADAPTER_CONFIG)
        judge = LocalVLMJudge(vlm_path(model_folder), device=device, dtype=chosen, max_new_tokens=max_new_tokens,
                              before_generate=_ComfyMemory(device), adapter_folder=adapter, scoring=scoring,
                              passes=passes)
        return io.NodeOutput(judge)


class ICEditVLMJudgeAPI(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditVLMJudgeAPI",
            display_name="ICEdit Judge: OpenAI-compatible API",
            category=CATEGORY,
            description="A vision-language model behind an OpenAI-compatible chat endpoint (Ollama, vLLM, LM "
                        "Studio, OpenAI) judges edits. The Early Filter checks that the endpoint answers before it "
                        "samples anything. The API key is read from an environment variable whose "
                        "NAME you give here, so it never lands in workflow files or image metadata.",
            inputs=[
                io.String.Input("base_url", default="http://127.0.0.1:11434/v1",
                                tooltip="The endpoint's base URL; /chat/completions is appended. Ollama: "
                                        "http://127.0.0.1:11434/v1, vLLM: http://host:8000/v1."),
                io.String.Input("model", default="qwen2.5vl:7b", tooltip="The model name the endpoint knows."),
                io.String.Input("api_key_env", default="OPENAI_API_KEY",
                                tooltip="The NAME of the environment variable holding the API key (not the key). "
                                        "Unset or empty: no key is sent (fine for local servers)."),
                io.Float.Input("timeout", default=120.0, min=1.0, max=3600.0, step=1.0,
                               tooltip="Seconds one answer may take in all, retries and their pauses included. "
                                       "A comparison never waits longer; Cancel stops the wait at once."),
                io.Int.Input("retries", default=3, min=0, max=10,
                             tooltip="Retries on connection errors, timeouts, HTTP 429 and 5xx, with "
                                     "exponential backoff (2, 4, 8 s), within the timeout."),
                # Optional, so the workflows saved before EditScore load unchanged.
                io.Combo.Input("scoring", options=list(SCORINGS), default=VIESCORE, optional=True,
                               tooltip="viescore: VIEScore's questions, 0-10, answered greedily (any VLM). "
                                       "editscore: EditScore's questions, 0-25 brought to 0-10, for a server "
                                       "serving the EditScore reward model (vLLM with its LoRA); answers are "
                                       "sampled (temperature 0.7, one seed per pass) and two edits are compared "
                                       "by their scores - use the Early Filter's absolute judge_mode (M scorings "
                                       "instead of 2 (M - 1))."),
                io.Int.Input("passes", default=1, min=1, max=16, optional=True,
                             tooltip="editscore: passes averaged per score (EditScore's num_pass), each with its "
                                     "own seed; each pass asks two questions."),
            ],
            outputs=[Judge.Output("judge", display_name="judge", tooltip="For ICEditEarlyFilterSampler.")],
        )

    @classmethod
    def execute(cls, base_url, model, api_key_env, timeout, retries, scoring=VIESCORE, passes=1) -> io.NodeOutput:
        if api_key_env.strip().startswith(("sk-", "Bearer ")):
            raise ValueError("api_key_env takes the NAME of an environment variable, not the key itself; remove "
                             "the key from the workflow and set it in the environment instead")
        key = os.environ.get(api_key_env.strip()) if api_key_env.strip() else None
        return io.NodeOutput(OpenAICompatibleJudge(
            base_url, model, api_key=key, timeout=timeout, retries=retries,
            check_interrupt=comfy.model_management.throw_exception_if_processing_interrupted, scoring=scoring,
            passes=passes))


class ICEditJudgeHeuristic(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditJudgeHeuristic",
            display_name="ICEdit Judge: Heuristic (no model)",
            category=CATEGORY,
            description="Judges from image statistics alone: how much changed, sharpness, clipping. Works offline "
                        "and instantly, but cannot tell whether an edit follows the instruction.",
            inputs=[],
            outputs=[Judge.Output("judge", display_name="judge", tooltip="For ICEditEarlyFilterSampler.")],
        )

    @classmethod
    def execute(cls) -> io.NodeOutput:
        return io.NodeOutput(HeuristicJudge())


NODES = [ICEditVLMJudgeLocal, ICEditVLMJudgeAPI, ICEditJudgeHeuristic]
