"""The small random-weight Qwen-Image-Edit smoke models (devtools/smoke_qwen.py) load through ComfyUI's own
loaders and classes: the diffusion model and the VAE through the stock UNETLoader and VAELoader, the text encoder
through ICEditSmokeTestQwenCLIPLoader, which ComfyUI's TextEncodeQwenImageEdit feeds images. Sampling them through
the 2509 graph (TextEncodeQwenImageEditPlus, ModelSamplingAuraFlow, KSampler, VAEDecode) is in
test_qwen_image_edit.py, the stock node's 1-megapixel reference in test_qwen_reference.py. In-process, but in this
tier: the 1-block smoke Qwen-Image is 380 M parameters."""
from __future__ import annotations

import os

import comfy.ldm.wan.vae
import comfy.model_base
import comfy.supported_models
import pytest
import safetensors.torch
import torch
from comfy.text_encoders.qwen_image import QwenImageTEModel, QwenImageTokenizer
from comfy_extras.nodes_qwen import TextEncodeQwenImageEdit

from comfyui_icedit.devtools import smoke_qwen
from comfyui_icedit.nodes.smoke_test import (QWEN_IMAGE_TEXT_WIDTH, load_smoke_test_qwen_clip)

PROMPT = "make the sky a warm sunset"
# The stock nodes' fixed sizes: the vision tower sees about 384x384 (Plus) or 1024x1024 (Edit) pixels, in 28-pixel
# cells of 2x2 patches of 14; the VAE about 1024x1024 (Plus rounds it to 8).
EDIT_VISION_TOKENS = (1036 // 28) ** 2  # 1024 -> 1036: 1369 tokens


@pytest.fixture(autouse=True)
def like_comfyuis_executor():
    """ComfyUI runs every node under torch.inference_mode() (execution.py), so do these tests: without it autograd
    records every operation on the loaded weights, three times slower here. Per test, so that no inference
    tensor outlives this module in ComfyUI's model management."""
    with torch.inference_mode():
        yield


@pytest.fixture(scope="module")
def qwen_paths(smoke_models_dir, smoke_files) -> dict[str, str]:
    """The three files of the smoke-model folder (devtools/smoke_models.py writes them with smoke_qwen), registered
    with folder_paths by the smoke_files fixture: role -> path."""
    return {role: os.path.join(smoke_models_dir, folder, name) for role, (folder, name) in
            smoke_qwen.QWEN_SMOKE_FILES.items()}


@pytest.fixture(scope="module")
def source():
    return torch.rand((1, 64, 64, 3), generator=torch.Generator().manual_seed(21))


def test_the_stock_loaders_take_the_files_as_qwen_image(qwen_paths, qwen_model, qwen_vae, qwen_clip):
    model = qwen_model.model
    assert isinstance(model, comfy.model_base.QwenImage)
    assert isinstance(model.model_config, comfy.supported_models.QwenImage)
    body = model.diffusion_model
    assert len(body.transformer_blocks) == 1 and body.inner_dim == 3072  # ComfyUI's fixed width
    assert body.img_in.in_features == 64 and body.txt_in.in_features == QWEN_IMAGE_TEXT_WIDTH
    assert isinstance(qwen_vae.first_stage_model, comfy.ldm.wan.vae.WanVAE) and qwen_vae.latent_channels == 16
    assert qwen_vae.first_stage_model.decoder.head[0].gamma.shape[0] == smoke_qwen.QWEN_VAE_DIM
    assert isinstance(qwen_clip.cond_stage_model, QwenImageTEModel)
    assert isinstance(qwen_clip.tokenizer, QwenImageTokenizer)
    sizes = {role: os.path.getsize(path) for role, path in qwen_paths.items()}
    # bf16: 380 M parameters, 10 M (mostly the 152064 x 64 token table), 0.9 M.
    assert sizes["qwen_unet"] < 770e6 and sizes["qwen_text_encoder"] < 21e6 and sizes["qwen_vae"] < 2e6, sizes


def test_the_stock_edit_node_gives_the_source_to_the_vision_tower_at_one_megapixel(qwen_clip, source):
    """TextEncodeQwenImageEdit (the first Qwen-Image-Edit): the source at 1 MP for the vision tower, 1369 image
    tokens in the conditioning. Its VAE call is the Plus node's at the same 1 MP (the test above), so it runs
    without a VAE here."""
    (conditioning,) = TextEncodeQwenImageEdit.execute(qwen_clip, PROMPT, None, image=source).result
    cond, extra = conditioning[0]
    assert cond.shape[0] == 1 and cond.shape[2] == QWEN_IMAGE_TEXT_WIDTH and torch.isfinite(cond).all()
    assert EDIT_VISION_TOKENS < cond.shape[1] < EDIT_VISION_TOKENS + 32 and "reference_latents" not in extra
    (text_only,) = TextEncodeQwenImageEdit.execute(qwen_clip, PROMPT).result
    # The same closing template tokens, changed by the image tokens before them: the embeddings went in.
    assert text_only[0][0].shape[1] < 32 and not torch.equal(text_only[0][0][:, -5:], cond[:, -5:])


def test_the_qwen_loader_refuses_a_file_without_its_config(tmp_path):
    path = str(tmp_path / "plain.safetensors")
    safetensors.torch.save_file({"qwen25_7b.logit_scale": torch.ones(())}, path)
    with pytest.raises(ValueError, match=r"no 'icedit_smoke_test_qwen_text_encoder'.*CLIPLoader \(type qwen_image\)"):
        load_smoke_test_qwen_clip(path)
