"""Qwen-Image-Edit(-2509) on ComfyUI's real classes with the small random-weight smoke models
(devtools/smoke_qwen.py): the diffusion model and the VAE through the stock UNETLoader and VAELoader, the text
encoder through ICEditSmokeTestQwenCLIPLoader; ComfyUI's own edit-encode nodes, ModelSamplingAuraFlow, KSampler
and VAEDecode on a 64x64 source. In-process, but in this tier: the 1-block smoke Qwen-Image is 380 M parameters.

Both stock encode nodes scale what they give the VAE to about 1 megapixel (comfy_extras/nodes_qwen.py), whatever
the source's size: a 128x128 reference latent, 4096 more tokens for the 3072-wide model, 36 s per model call on
this CPU (0.5 s with the source's own 8x8 latent). So the Plus node runs with the VAE to encode only, and the
sampling test gives it no VAE and attaches the source's latent with ComfyUI's ReferenceLatent: the same
conditioning_set_values(..., append=True) the node does, at the source's size."""
from __future__ import annotations

import os

import comfy.ldm.wan.vae
import comfy.model_base
import comfy.supported_models
import nodes as comfy_nodes
import pytest
import safetensors.torch
import torch
from comfy.text_encoders.qwen_image import QwenImageTEModel, QwenImageTokenizer
from comfy_extras.nodes_edit_model import ReferenceLatent
from comfy_extras.nodes_model_advanced import ModelSamplingAuraFlow
from comfy_extras.nodes_qwen import TextEncodeQwenImageEdit, TextEncodeQwenImageEditPlus

from comfyui_icedit.devtools import smoke_qwen
from comfyui_icedit.nodes.smoke_test import (QWEN_IMAGE_TEXT_WIDTH, load_smoke_test_qwen_clip)

PROMPT = "make the sky a warm sunset"
# The stock nodes' fixed sizes: the vision tower sees about 384x384 (Plus) or 1024x1024 (Edit) pixels, in 28-pixel
# cells of 2x2 patches of 14; the VAE about 1024x1024 (Plus rounds it to 8).
PLUS_VISION_TOKENS = (392 // 28) ** 2  # 384 -> 392: 196 tokens
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


def encoded_with_reference(clip, vae, source, prompt):
    """TextEncodeQwenImageEditPlus with image1 for the vision tower, the source's latent as its reference."""
    (conditioning,) = TextEncodeQwenImageEditPlus.execute(clip, prompt, None, image1=source).result
    (latent,) = comfy_nodes.VAEEncode().encode(vae, source)
    return ReferenceLatent.execute(conditioning, latent).result[0], latent


def test_the_2509_graph_samples_with_the_source_as_reference(qwen_model, qwen_vae, qwen_clip, source):
    positive, latent = encoded_with_reference(qwen_clip, qwen_vae, source, PROMPT)
    negative, _ = encoded_with_reference(qwen_clip, qwen_vae, source, "")
    cond = positive[0][0]
    assert cond.shape[0] == 1 and cond.shape[2] == QWEN_IMAGE_TEXT_WIDTH and torch.isfinite(cond).all()
    assert cond.shape[1] > PLUS_VISION_TOKENS  # "Picture 1: <image>" and the prompt, after the system template
    assert latent["samples"].shape == (1, 16, 1, 8, 8)  # Wan 2.1 latent: 16 channels, one frame, 1/8 size

    seen = []

    def record(apply_model, args):
        seen.append((args["cond_or_uncond"], args["c"]["ref_latents"]))
        return apply_model(args["input"], args["timestep"], **args["c"])

    (model,) = ModelSamplingAuraFlow().patch_aura(qwen_model, 3.1)
    model = model.clone()
    model.set_model_unet_function_wrapper(record)
    (sampled,) = comfy_nodes.KSampler().sample(model, 7, 2, 2.5, "euler", "simple", positive, negative, latent,
                                               denoise=1.0)
    assert sampled["samples"].shape == (1, 16, 1, 8, 8) and torch.isfinite(sampled["samples"]).all()
    # 2 steps, each with the prompt (0) and the negative (1); every call carries the source's latent, as the
    # model takes it (Wan 2.1 latent scaling).
    assert sorted(i for cond_or_uncond, _ in seen for i in cond_or_uncond) == [0, 0, 1, 1]
    expected = qwen_model.model.process_latent_in(latent["samples"])
    for cond_or_uncond, refs in seen:
        assert len(refs) == 1 and torch.equal(refs[0], expected.repeat(len(cond_or_uncond), 1, 1, 1, 1))

    (decoded,) = comfy_nodes.VAEDecode().decode(qwen_vae, sampled)
    assert decoded.shape == (1, 64, 64, 3) and torch.isfinite(decoded).all()
    assert 0.0 <= float(decoded.min()) and float(decoded.max()) <= 1.0


def test_the_stock_plus_node_with_the_vae_adds_only_a_one_megapixel_reference(qwen_vae, qwen_clip, source):
    """TextEncodeQwenImageEditPlus as a 2509 workflow wires it: the text conditioning is the one it gives without
    the VAE (what the sampling test uses), plus the source at 1024x1024 as its one reference latent."""
    (with_vae,) = TextEncodeQwenImageEditPlus.execute(qwen_clip, PROMPT, qwen_vae, image1=source).result
    (without_vae,) = TextEncodeQwenImageEditPlus.execute(qwen_clip, PROMPT, None, image1=source).result
    assert torch.equal(with_vae[0][0], without_vae[0][0])
    assert set(with_vae[0][1]) - set(without_vae[0][1]) == {"reference_latents"}
    (reference,) = with_vae[0][1]["reference_latents"]
    assert reference.shape == (1, 16, 1, 128, 128) and torch.isfinite(reference).all()


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
