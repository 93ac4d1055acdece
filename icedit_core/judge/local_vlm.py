"""A judge run by a local Hugging Face vision-language model (Qwen2-VL, Qwen2.5-VL, Qwen3-VL and other
image-text-to-text models) through transformers' generate. The model is loaded on first use; the caller
decides the device and may hook in before each generation (ComfyUI's memory management does)."""
from __future__ import annotations

import os

import torch

from ..model_folder import has_config, has_weights
from . import editscore
from .protocol import VIESCORE, ChatJudge, JudgeError


ADAPTER_CONFIG = "adapter_config.json"  # what marks a PEFT LoRA folder


class LocalVLMJudge(ChatJudge):
    name = "local"

    def __init__(self, folder: str, device="cpu", dtype=torch.float32, max_new_tokens: int = 256,
                 before_generate=None, adapter_folder: str | None = None, scoring: str = VIESCORE,
                 passes: int = 1):
        if not os.path.isdir(folder):
            raise JudgeError(f"{folder} is not a folder; a local judge is a Hugging Face model folder "
                             "(config.json, weights, processor files)")
        if not has_config(folder):
            raise JudgeError(f"{folder} has no config.json; download the whole model folder (e.g. "
                             "Qwen/Qwen2.5-VL-7B-Instruct) into models/vlm/")
        if adapter_folder is not None and not os.path.isfile(os.path.join(adapter_folder, ADAPTER_CONFIG)):
            raise JudgeError(f"{adapter_folder} has no {ADAPTER_CONFIG}; a LoRA for the judge (e.g. EditScore's) is "
                             "a PEFT adapter folder (adapter_config.json, adapter_model.safetensors)")
        self.set_scoring(scoring, passes)
        self.folder, self.device, self.dtype = folder, torch.device(device), dtype
        self.adapter_folder = adapter_folder
        self.max_new_tokens = max_new_tokens
        self.before_generate = before_generate
        self.model = None
        self.processor = None

    def check(self):
        """The weights are there (cheap: file names only; loading waits for the first question)."""
        if not has_weights(self.folder):
            raise JudgeError(f"{self.folder} has no weights (*.safetensors or *.bin); download the whole model "
                             "folder into models/vlm/")

    def load(self):
        if self.model is None:
            from transformers import AutoModelForImageTextToText, AutoProcessor

            try:
                self.processor = AutoProcessor.from_pretrained(self.folder)
                model = AutoModelForImageTextToText.from_pretrained(self.folder, dtype=self.dtype).eval()
            except (OSError, ValueError, KeyError) as error:
                raise JudgeError(f"cannot load the vision-language model in {self.folder}: {error}") from error
            if self.adapter_folder is not None:
                model = self._with_adapter(model)
            self.model = model
        return self.model

    def _with_adapter(self, model):
        """The base model with the LoRA merged into its weights (peft), so it generates as a plain transformers
        model under ComfyUI's memory management; a LoRA made for another model is a JudgeError naming both."""
        try:
            from peft import PeftModel
        except ImportError:
            raise JudgeError(f"the judge's LoRA folder {self.adapter_folder} needs peft: pip install peft (in "
                             "ComfyUI's Python)") from None
        try:
            return PeftModel.from_pretrained(model, self.adapter_folder).merge_and_unload().eval()
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise JudgeError(f"cannot apply the LoRA in {self.adapter_folder} to the model in {self.folder} "
                             f"(a LoRA for another model?): {first_line}") from None

    @torch.no_grad()
    def ask(self, images, prompt: str, seed: int | None = None) -> str:
        model = self.load()
        if self.before_generate is not None:
            self.before_generate(self)
        content = [{"type": "image"} for _ in images] + [{"type": "text", "text": prompt}]
        text = self.processor.apply_chat_template([{"role": "user", "content": content}],
                                                  add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=[text], images=list(images), return_tensors="pt")
        device = next(model.parameters()).device
        inputs = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in inputs.items()}
        if seed is None:
            output = model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        else:  # a sampled answer (EditScore's passes), reproducible by its seed, leaving the global RNG as it was
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed)
                output = model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=True,
                                        temperature=editscore.TEMPERATURE)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)[0]
