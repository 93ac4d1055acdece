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
import comfy.text_encoders.llama
import comfy.text_encoders.qwen_vl
import comfy.text_encoders.t5
import comfy.utils
import folder_paths
import safetensors
import torch
from comfy.text_encoders.flux import FluxClipModel, FluxTokenizer
from comfy.text_encoders.qwen_image import Qwen25_7BVLIModel, QwenImageTEModel, QwenImageTokenizer
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


def _metadata_config(path: str, key: str, what: str, real_loader: str) -> dict:
    """The JSON config a generated smoke-test file carries in its metadata under `key`."""
    with safetensors.safe_open(path, framework="pt") as handle:
        metadata = handle.metadata() or {}
    if key not in metadata:
        raise ValueError(f"{path} is not an ICEdit smoke-test {what} file (its metadata has no {key!r}). "
                         f"{real_loader}")
    return json.loads(metadata[key])


def _clip_from_file(path: str, target, **clip_options):
    """A comfy.sd.CLIP of `target` with the file's weights, which must fit it key for key."""
    state_dict = comfy.utils.load_torch_file(path, safe_load=True)
    clip = comfy.sd.CLIP(target, embedding_directory=folder_paths.get_folder_paths("embeddings"),
                         parameters=comfy.utils.calculate_parameters(state_dict), **clip_options)
    missing, unexpected = clip.load_sd(state_dict, full_model=True)
    if missing or unexpected:
        raise ValueError(f"{path} does not match its own config: missing keys {sorted(missing)[:5]}, "
                         f"unexpected keys {sorted(unexpected)[:5]}")
    return clip


def read_smoke_test_configs(path: str) -> dict:
    return _metadata_config(path, SMOKE_TEST_CONFIG_KEY, "text encoder",
                            "Real Flux text encoders load with DualCLIPLoader (type flux).")


def load_smoke_test_clip(path: str):
    configs = read_smoke_test_configs(path)
    target = comfy.supported_models_base.ClipTarget(FluxTokenizer, SmokeTestFluxTextEncoders)
    target.params = {"clip_l_config": configs["clip_l"], "t5xxl_config": configs["t5xxl"]}
    return _clip_from_file(path, target, tokenizer_data={"t5xxl_min_length": SMOKE_TEST_T5_MIN_LENGTH})


def _loader_schema(node_id: str, display_name: str, description: str, file_name: str) -> io.Schema:
    """A smoke-test text-encoder loader: one file from models/text_encoders/ in, a CLIP out."""
    return io.Schema(
        node_id=node_id,
        display_name=display_name,
        category="ICEdit/testing",
        description=description,
        inputs=[
            io.Combo.Input("text_encoder_name", options=folder_paths.get_filename_list("text_encoders"),
                           tooltip=f"A file made by the pack's smoke-test generator ({file_name})."),
        ],
        outputs=[io.Clip.Output()],
    )


class ICEditSmokeTestCLIPLoader(ICEditNode):
    @classmethod
    def define_schema(cls):
        return _loader_schema("ICEditSmokeTestCLIPLoader", "ICEdit Smoke-Test Text Encoders (random weights)",
                              "Loads the small random-weight Flux text encoders that the pack generates for smoke "
                              "tests. Its output is noise, not an edit. For real edits use DualCLIPLoader (flux).",
                              "icedit-smoke-test-text-encoders.safetensors")

    @classmethod
    def execute(cls, text_encoder_name) -> io.NodeOutput:
        path = folder_paths.get_full_path_or_raise("text_encoders", text_encoder_name)
        return io.NodeOutput(load_smoke_test_clip(path))


# Qwen-Image-Edit's text encoder. ComfyUI's CLIPLoader (type qwen_image) always builds the 7B Qwen2.5-VL (3584 wide,
# 28 layers, a 32-layer 1280-wide vision tower); the smoke loader builds the same classes at the sizes in its file.
# Metadata key of that file: {"text": <Qwen25_7BVLI_Config fields>, "vision": <Qwen2VLVisionTransformer sizes>,
# "output_width": 3584} (devtools/smoke_qwen.py writes it).
SMOKE_TEST_QWEN_CONFIG_KEY = "icedit_smoke_test_qwen_text_encoder"
# The text width Qwen-Image's diffusion model takes: its txt_norm / txt_in are built at the class default
# joint_attention_dim (comfy/ldm/qwen_image/model.py), which model detection never reads from the file.
QWEN_IMAGE_TEXT_WIDTH = 3584


class SmokeTestQwen25VL(comfy.text_encoders.llama.Qwen25_7BVLI):
    """ComfyUI's Qwen2.5-VL body (its Llama2_ text model and Qwen2VLVisionTransformer) at the given sizes, and one
    linear map from the small hidden size to the width the diffusion model reads. The map stands in for a
    3584-wide model, whose token table alone (152064 x 3584) would be a 1.09 GB file."""

    def __init__(self, config_dict, dtype, device, operations):
        torch.nn.Module.__init__(self)  # not Qwen25_7BVLI.__init__: that builds the 7B text model and vision tower
        config = comfy.text_encoders.llama.Qwen25_7BVLI_Config(**config_dict["text"])
        self.num_layers = config.num_hidden_layers
        self.model = comfy.text_encoders.llama.Llama2_(config, device=device, dtype=dtype, ops=operations)
        # The vision tower's output joins the token embeddings, so it is as wide as the text model.
        self.visual = comfy.text_encoders.qwen_vl.Qwen2VLVisionTransformer(
            output_hidden_size=config.hidden_size, **config_dict["vision"], device=device, dtype=dtype, ops=operations)
        self.output_projection = operations.Linear(config.hidden_size, config_dict["output_width"], bias=False,
                                                   device=device, dtype=dtype)
        self.dtype = dtype

    def forward(self, *args, **kwargs):
        last, intermediate = super().forward(*args, **kwargs)  # Qwen25_7BVLI: image positions (M-RoPE), then Llama
        if intermediate is not None:
            intermediate = self.output_projection(intermediate)
        return self.output_projection(last), intermediate


class SmokeTestQwen25VLModel(Qwen25_7BVLIModel):
    """Qwen25_7BVLIModel (ComfyUI's SDClipModel for Qwen-Image) with the smoke body: the same settings (pad
    151643, last layer, no final norm on hidden states, attention masks), its config from model_options."""

    def __init__(self, device="cpu", layer="last", layer_idx=None, dtype=None, attention_mask=True, model_options={}):
        # Qwen25_7BVLIModel.__init__'s call, with model_class swapped: it fixes model_class and an empty config.
        comfy.sd1_clip.SDClipModel.__init__(
            self, device=device, layer=layer, layer_idx=layer_idx, textmodel_json_config={}, dtype=dtype,
            special_tokens={"pad": 151643}, layer_norm_hidden_state=False, model_class=SmokeTestQwen25VL,
            enable_attention_masks=attention_mask, return_attention_masks=attention_mask, model_options=model_options)


def smoke_test_qwen_model_options(config: dict) -> dict:
    """model_options that make ComfyUI's own QwenImageTEModel build the smoke body: SD1ClipModel takes the class
    from "<name>_class" and SDClipModel merges "<name>_model_config" into the config (comfy/sd1_clip.py)."""
    return {"qwen25_7b_class": SmokeTestQwen25VLModel, "qwen25_7b_model_config": dict(config)}


def read_smoke_test_qwen_config(path: str) -> dict:
    config = _metadata_config(path, SMOKE_TEST_QWEN_CONFIG_KEY, "Qwen-Image text encoder",
                              "A real Qwen2.5-VL-7B text encoder loads with CLIPLoader (type qwen_image).")
    missing = {"text", "vision", "output_width"} - set(config)
    if missing:
        raise ValueError(f"{path}: metadata {SMOKE_TEST_QWEN_CONFIG_KEY!r} lacks {sorted(missing)}")
    if config["output_width"] != QWEN_IMAGE_TEXT_WIDTH:
        raise ValueError(f"{path}: output_width {config['output_width']} is not the {QWEN_IMAGE_TEXT_WIDTH} "
                         "that Qwen-Image's diffusion model reads (txt_in)")
    return config


def load_smoke_test_qwen_clip(path: str):
    """A CLIP object as CLIPLoader (qwen_image) makes one: ComfyUI's QwenImageTokenizer (the Qwen2.5 tokenizer it
    ships, the Qwen-Image templates, image placeholders) and QwenImageTEModel, with the smoke body inside."""
    config = read_smoke_test_qwen_config(path)
    target = comfy.supported_models_base.ClipTarget(QwenImageTokenizer, QwenImageTEModel)
    return _clip_from_file(path, target, model_options=smoke_test_qwen_model_options(config))


class ICEditSmokeTestQwenCLIPLoader(ICEditNode):
    @classmethod
    def define_schema(cls):
        return _loader_schema("ICEditSmokeTestQwenCLIPLoader",
                              "ICEdit Smoke-Test Qwen-Image Text Encoder (random weights)",
                              "Loads the small random-weight Qwen2.5-VL text encoder that the pack generates for "
                              "Qwen-Image-Edit smoke tests. Its output is noise, not an edit. For real edits use "
                              "CLIPLoader (qwen_image).", "icedit-smoke-test-qwen-text-encoder.safetensors")

    @classmethod
    def execute(cls, text_encoder_name) -> io.NodeOutput:
        path = folder_paths.get_full_path_or_raise("text_encoders", text_encoder_name)
        return io.NodeOutput(load_smoke_test_qwen_clip(path))


def registered_nodes() -> list:
    # Only the runner and the tests ask for these nodes (a server started with the variable set); users never see
    # them in the node search.
    loaders = [ICEditSmokeTestCLIPLoader, ICEditSmokeTestQwenCLIPLoader]
    return loaders if os.environ.get(SMOKE_NODES_ENV) == "1" else []
