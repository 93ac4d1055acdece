"""ICEditMoELoRALoader: the ICEdit MoE-LoRA (or a normal ICEdit LoRA) on a FLUX.1 Fill MODEL."""
from __future__ import annotations

import logging

import folder_paths
from comfy_api.latest import io

from ..icedit_core.adapter_file import read_adapter
from . import flux_hooks
from .validation import ICEditNode


class ICEditMoELoRALoader(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditMoELoRALoader",
            display_name="ICEdit MoE-LoRA Loader",
            category="ICEdit",
            description="Loads ICEdit's MoE-LoRA: the plain LoRA modules are merged through ComfyUI's own LoRA "
                        "patching, the mixture-of-experts layers route every token to its expert(s) while "
                        "sampling. The input MODEL is left unchanged. A normal ICEdit LoRA works too.",
            inputs=[
                io.Model.Input("model", tooltip="A FLUX.1 Fill model (UNETLoader: flux1-fill-dev.safetensors)."),
                io.Combo.Input("lora_name", options=folder_paths.get_filename_list("loras"),
                               tooltip="ICEdit-MoE-LoRA (HF sanaka87/ICEdit-MoE-LoRA, "
                                       "pytorch_lora_weights.safetensors) from the loras folder."),
                io.Float.Input("strength", default=1.0, min=-10.0, max=10.0, step=0.01,
                               tooltip="Scales the whole adapter, plain and expert parts. ICEdit uses 1.0."),
                io.Int.Input("top_k", default=0, min=0, max=64,
                             tooltip="Experts per token. 0: the file's own setting, else 1 (ICEdit's)."),
            ],
            outputs=[
                io.Model.Output(tooltip="A clone of the model with the adapter applied."),
                io.String.Output("report", display_name="report", tooltip="What the file held and how it was applied."),
            ],
        )

    @classmethod
    def execute(cls, model, lora_name, strength, top_k) -> io.NodeOutput:
        path = folder_paths.get_full_path_or_raise("loras", lora_name)
        adapter = read_adapter(path)
        patched, report = flux_hooks.apply_adapter(model, adapter, strength, top_k or adapter.default_top_k())
        logging.info("ICEdit MoE-LoRA loader: %s", report.replace("\n", "; "))
        return io.NodeOutput(patched, report)


NODES = [ICEditMoELoRALoader]
