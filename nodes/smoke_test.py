"""A stand-in for DualCLIPLoader, for smoke tests without real weights.

ComfyUI builds Flux's text encoders at their fixed real sizes (CLIP-L and the 4.7 B-parameter T5-XXL), so a small
random-weight pair cannot go through the stock loaders. This node builds the same ComfyUI classes (SDClipModel
with CLIP and T5 bodies, the real Flux tokenizers) at the sizes written in the file's metadata. It exists for
the headless smoke run and the tests; real edits use the stock DualCLIPLoader (type flux).
"""
from __future__ import annotations

import json
import os

import comfy.sd
import comfy.sd1_clip
import comfy.supported_models_base
import comfy.text_encoders.t5
import comfy.utils
import folder_paths
import safetensors
import torch
from comfy.text_encoders.flux import FluxClipModel, FluxTokenizer
from comfy_api.latest import io

from ..icedit_core.model_files import SMOKE_NODES_ENV
from .validation import ICEditNode

# Metadata key of the generated file holding {"clip_l": <CLIP text config>, "t5xxl": <T5 config>}.
SMOKE_TEST_CONFIG_KEY = "icedit_smoke_test_text_encoders"
# Flux's T5 tokenizer pads every prompt to 256 tokens, which would be most of the smoke model's work (its image has
# 32 tokens); the smoke encoders pad to this instead. The tokenizer and the model code are the same otherwise.
SMOKE_TEST_T5_MIN_LENGTH = 16


class SmokeTestFluxTextEncoders(FluxClipModel):
    """FluxClipModel with CLIP-L and T5 bodies built from given (small) configs instead of the fixed real ones."""

    def __init__(self, clip_l_config, t5xxl_config, device="cpu", dtype=None, model_options=None):
        torch.nn.Module.__init__(self)  # not FluxClipModel.__init__: that builds the full-size encoders
        model_options = model_options or {}
        self.clip_l = comfy.sd1_clip.SDClipModel(device=device, dtype=dtype, textmodel_json_config=clip_l_config,
                                                 return_projected_pooled=False, model_options=model_options)
        self.t5xxl = comfy.sd1_clip.SDClipModel(device=device, dtype=dtype, textmodel_json_config=t5xxl_config,
                                                special_tokens={"end": 1, "pad": 0},
                                                model_class=comfy.text_encoders.t5.T5,
                                                model_options={**model_options, "model_name": "t5xxl"})
        self.dtypes = {dtype}


def read_smoke_test_configs(path: str) -> dict:
    with safetensors.safe_open(path, framework="pt") as handle:
        metadata = handle.metadata() or {}
    if SMOKE_TEST_CONFIG_KEY not in metadata:
        raise ValueError(f"{path} is not an ICEdit smoke-test text encoder file (its metadata has no "
                         f"{SMOKE_TEST_CONFIG_KEY!r}). Real Flux text encoders load with DualCLIPLoader (type flux).")
    return json.loads(metadata[SMOKE_TEST_CONFIG_KEY])


def load_smoke_test_clip(path: str):
    configs = read_smoke_test_configs(path)
    state_dict = comfy.utils.load_torch_file(path, safe_load=True)
    target = comfy.supported_models_base.ClipTarget(FluxTokenizer, SmokeTestFluxTextEncoders)
    target.params = {"clip_l_config": configs["clip_l"], "t5xxl_config": configs["t5xxl"]}
    clip = comfy.sd.CLIP(target, embedding_directory=folder_paths.get_folder_paths("embeddings"),
                         tokenizer_data={"t5xxl_min_length": SMOKE_TEST_T5_MIN_LENGTH},
                         parameters=comfy.utils.calculate_parameters(state_dict))
    missing, unexpected = clip.load_sd(state_dict, full_model=True)
    if missing or unexpected:
        raise ValueError(f"{path} does not match its own config: missing keys {sorted(missing)[:5]}, "
                         f"unexpected keys {sorted(unexpected)[:5]}")
    return clip


class ICEditSmokeTestCLIPLoader(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditSmokeTestCLIPLoader",
            display_name="ICEdit Smoke-Test Text Encoders (random weights)",
            category="ICEdit/testing",
            description="Loads the small random-weight Flux text encoders that the pack generates for smoke "
                        "tests. Its output is noise, not an edit. For real edits use DualCLIPLoader (flux).",
            inputs=[
                io.Combo.Input("text_encoder_name", options=folder_paths.get_filename_list("text_encoders"),
                               tooltip="A file made by the pack's smoke-test generator "
                                       "(icedit-smoke-test-text-encoders.safetensors)."),
            ],
            outputs=[io.Clip.Output()],
        )

    @classmethod
    def execute(cls, text_encoder_name) -> io.NodeOutput:
        path = folder_paths.get_full_path_or_raise("text_encoders", text_encoder_name)
        return io.NodeOutput(load_smoke_test_clip(path))




def registered_nodes() -> list:
    # Only the runner and the tests ask for this node (a server started with the variable set); users never see
    # it in the node search.
    return [ICEditSmokeTestCLIPLoader] if os.environ.get(SMOKE_NODES_ENV) == "1" else []
