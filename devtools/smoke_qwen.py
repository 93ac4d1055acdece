"""Small random-weight Qwen-Image(-Edit) models built with ComfyUI 0.3.75's own classes: a 1-block diffusion model
and a Qwen-Image VAE that the stock UNETLoader / VAELoader load, and a tiny Qwen2.5-VL text encoder for the pack's
ICEditSmokeTestQwenCLIPLoader (the stock CLIPLoader builds the fixed 7B one).

What ComfyUI fixes, and so what these sizes are (read from comfy/model_detection.py and comfy/sd.py):
- diffusion model: only in_channels (img_in) and the block count are read from the file; width 3072 (24 heads of
  128) and text width 3584 (txt_norm, txt_in) are the class defaults, so the smallest loadable one is 1 block at
  full width (about 380 M parameters, 0.76 GB in bf16).
- VAE (Wan 2.1 layout): the base width `dim` is read from decoder.head.0.gamma; dim_mult, res blocks and the 16
  latent channels are fixed. dim 8 gives a 1.8 MB file (the real one is dim 96, 254 MB).
- text encoder: the output must be 3584 wide for the diffusion model's txt_in. The smoke encoder is 64 wide with
  one linear map to 3584 at the end (nodes/smoke_test.py), about 10 M parameters; a 3584-wide one would carry a
  152064 x 3584 token table alone (1.09 GB in bf16).
On the project's 2-core CPU (fp32, as UNETLoader loads it there) one model call at a 64x64 image with the source's
8x8 latent as reference takes about 0.5 s; with the 128x128 reference latent that the stock Qwen edit-encode nodes
make of any source (they scale it to 1 MP for the VAE), about 36 s.
Imports ComfyUI: run under devtools/bootstrap.py.
"""
from __future__ import annotations

import json
import os

import comfy.ldm.wan.vae
import comfy.model_management
import comfy.model_patcher
import comfy.supported_models
import safetensors.torch
import torch
from comfy.text_encoders.qwen_image import QwenImageTEModel

from ..icedit_core.model_files import SMOKE_FILES
from ..nodes.smoke_test import QWEN_IMAGE_TEXT_WIDTH, SMOKE_TEST_QWEN_CONFIG_KEY, smoke_test_qwen_model_options
from .smoke_models import randomize_

# role -> (ComfyUI models folder, file name): the Qwen rows of icedit_core/model_files.py's SMOKE_FILES.
QWEN_SMOKE_FILES = {role: SMOKE_FILES[role] for role in ("qwen_unet", "qwen_text_encoder", "qwen_vae")}

# The text encoder's sizes, stored in its file's metadata. "text": fields of ComfyUI's Qwen25_7BVLI_Config (its
# head_dim 128 and M-RoPE sections are class constants, not fields, so each head is 128 wide at any hidden_size);
# vocab_size stays the real one, since the tokenizer's special tokens (<|image_pad|> 151655) index the table.
# "vision": Qwen2VLVisionTransformer arguments (patch 14, merge 2 stay: process_qwen2vl_images assumes them).
QWEN_TEXT_ENCODER_CONFIG = {
    "text": {"vocab_size": 152064, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
             "num_attention_heads": 2, "num_key_value_heads": 1},
    "vision": {"hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "num_layers": 1},
    "output_width": QWEN_IMAGE_TEXT_WIDTH,
}

# comfy/sd.py's fixed Wan 2.1 VAE config (VAE.__init__); only dim comes from the file.
QWEN_VAE_DIM = 8
_WAN21_VAE_CONFIG = {"z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_scales": [],
                     "temperal_downsample": [False, True, True], "dropout": 0.0}


def qwen_image_config(num_layers: int = 1) -> dict:
    """What comfy/model_detection.py makes of a Qwen-Image file: 16 latent channels in 2x2 patches (img_in reads
    64) and the block count; the rest are QwenImageTransformer2DModel's defaults."""
    return {"image_model": "qwen_image", "in_channels": 64, "num_layers": num_layers}


def build_qwen_image(unet_config: dict | None = None, seed: int = 0, dtype=torch.float32, device=None
                     ) -> comfy.model_patcher.ModelPatcher:
    """A random Qwen-Image as ComfyUI loads one: supported_models.QwenImage -> model_base.QwenImage -> patcher."""
    model_config = comfy.supported_models.QwenImage(dict(unet_config or qwen_image_config()))
    model_config.set_inference_dtype(dtype, None)
    model = model_config.get_model({}, device=device)
    randomize_(model.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=comfy.model_management.get_torch_device(),
                                            offload_device=comfy.model_management.unet_offload_device())


def qwen_image_state_dict(seed: int = 12, num_layers: int = 1) -> dict[str, torch.Tensor]:
    """The diffusion model's weights in bf16, as the released files are. Built in bf16 directly: the fp32 model
    would be a second 1.5 GB in memory."""
    patcher = build_qwen_image(qwen_image_config(num_layers), seed=seed, dtype=torch.bfloat16)
    return {k: v.contiguous() for k, v in patcher.model.diffusion_model.state_dict().items()}


def qwen_vae_state_dict(seed: int = 13, dim: int = QWEN_VAE_DIM) -> dict[str, torch.Tensor]:
    """A random Qwen-Image VAE (ComfyUI's Wan 2.1 WanVAE, 16 latent channels) at base width `dim`, bf16."""
    vae = randomize_(comfy.ldm.wan.vae.WanVAE(dim=dim, **_WAN21_VAE_CONFIG), seed)
    return {k: v.to(torch.bfloat16).contiguous() for k, v in vae.state_dict().items()}


def qwen_text_encoder_model(config: dict = QWEN_TEXT_ENCODER_CONFIG, dtype=torch.float32,
                            device="cpu") -> QwenImageTEModel:
    """ComfyUI's QwenImageTEModel with the smoke Qwen2.5-VL body, as the smoke loader builds it."""
    return QwenImageTEModel(device=device, dtype=dtype, model_options=smoke_test_qwen_model_options(config))


def qwen_text_encoder_state_dict(seed: int = 14, config: dict = QWEN_TEXT_ENCODER_CONFIG
                                 ) -> dict[str, torch.Tensor]:
    """The whole text-encoder module's weights (keys qwen25_7b.transformer.model.* / .visual.* /
    .output_projection.*), bf16, for ICEditSmokeTestQwenCLIPLoader."""
    model = randomize_(qwen_text_encoder_model(config), seed)
    return {k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}


def qwen_text_encoder_metadata(config: dict = QWEN_TEXT_ENCODER_CONFIG) -> dict[str, str]:
    return {SMOKE_TEST_QWEN_CONFIG_KEY: json.dumps(config)}


def full_width_text_encoder_bytes(config: dict = QWEN_TEXT_ENCODER_CONFIG) -> int:
    """bf16 bytes of the alternative without the output map: the same encoder at hidden size 3584 (1 layer, its
    heads), built on the meta device so nothing is allocated. For the record of why the map exists."""
    wide = {**config, "text": {**config["text"], "hidden_size": config["output_width"]}}
    with torch.device("meta"):
        model = qwen_text_encoder_model(wide, device="meta")
    return 2 * sum(p.numel() for name, p in model.named_parameters() if "output_projection" not in name)


def _save(state_dict: dict, path: str, metadata: dict | None = None) -> None:
    partial = path + ".partial"
    safetensors.torch.save_file(state_dict, partial, metadata=metadata)
    os.replace(partial, path)  # never leave a half-written file under the final name


def save_qwen_smoke_files(root: str) -> dict[str, str]:
    """Write the three files under a ComfyUI-style models folder `root`; returns role -> path."""
    paths = {}
    for role, (folder, name) in QWEN_SMOKE_FILES.items():
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        paths[role] = os.path.join(root, folder, name)
    state_dict = qwen_image_state_dict()
    _save(state_dict, paths["qwen_unet"])
    del state_dict  # 0.76 GB: gone before the next one is built
    _save(qwen_text_encoder_state_dict(), paths["qwen_text_encoder"], metadata=qwen_text_encoder_metadata())
    _save(qwen_vae_state_dict(), paths["qwen_vae"])
    return paths
