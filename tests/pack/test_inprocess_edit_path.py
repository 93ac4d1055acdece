"""The basic ICEdit path run in-process with ComfyUI's own classes: a tiny FLUX.1 Fill built through
comfy.supported_models / comfy.model_base / ModelPatcher, the stock VAE loader, LoRA loader and KSampler."""
from __future__ import annotations

import logging

import comfy.lora
import comfy.model_management
import folder_paths
import nodes as comfy_nodes
import pytest
import safetensors.torch
import torch

from comfyui_icedit.devtools import smoke_adapters, smoke_models
from comfyui_icedit.icedit_core import diptych as dip
from comfyui_icedit.nodes.edit import (ICEditCrop, ICEditDiptych, ICEditFillConditioning, ICEditModelSamplingFlux,
                                       ICEditPromptEncode)


def source_image(width=48, height=50):
    generator = torch.Generator().manual_seed(7)
    return torch.rand((1, height, width, 3), generator=generator)


def test_basic_path_samples_and_the_model_sees_the_source_as_context(clip, vae):
    image = source_image()
    diptych, mask, layout = ICEditDiptych.execute(image, 32).result
    assert diptych.shape == (1, 32, 64, 3) and mask.shape == (1, 32, 64)

    positive, negative, text, instruction = ICEditPromptEncode.execute(clip, "make it red", "released", "", 50.0).result
    assert instruction == "make it red"
    assert text.endswith("on the left but make it red")
    assert positive[0][1]["guidance"] == 50.0
    assert torch.count_nonzero(negative[0][0]) == 0 and torch.count_nonzero(negative[0][1]["pooled_output"]) == 0

    fill_positive, fill_negative, latent = ICEditFillConditioning.execute(positive, negative, vae, diptych, mask).result
    assert "noise_mask" not in latent  # resumable runs need the whole diptych sampled
    assert latent["samples"].shape == (1, 16, 4, 8)

    model = smoke_models.build_flux_fill(smoke_models.TINY_FLUX_FILL, seed=0)
    shifted = ICEditModelSamplingFlux.execute(model, layout, 1.15, 0.5).result[0]
    tokens = 64 * 32 / 256
    expected_shift = 0.5 + (tokens - 256) * (1.15 - 0.5) / (4096 - 256)
    assert shifted.get_model_object("model_sampling").shift == pytest.approx(expected_shift)

    seen = []

    def record_inputs(apply_model, args):
        seen.append(args["c"]["c_concat"].detach().clone())
        return apply_model(args["input"], args["timestep"], **args["c"])

    shifted.set_model_unet_function_wrapper(record_inputs)
    (sampled,) = comfy_nodes.common_ksampler(shifted, 42, 3, 1.0, "euler", "simple", fill_positive, fill_negative,
                                             latent, denoise=1.0)
    assert len(seen) == 3  # one model call per euler step at cfg 1
    assert torch.isfinite(sampled["samples"]).all()

    # What the model saw as context: the diptych with the right half blanked to grey, VAE-encoded, then the
    # mask as 64 channels (one per pixel of each 8x8 latent cell): 0 over the left panel, 1 over the right.
    masked = diptych.clone()
    masked[:, :, 32:] = 0.5
    expected_context = model.model.process_latent_in(vae.encode(masked))
    context = seen[0]
    assert context.shape == (1, 16 + 64, 4, 8)
    torch.testing.assert_close(context[:, :16].float(), expected_context.float(), rtol=1e-5, atol=1e-5)
    assert torch.all(context[:, 16:, :, :4] == 0) and torch.all(context[:, 16:, :, 4:] == 1)
    assert torch.equal(masked[:, :, :32], dip.resize_images(image, 32, 32))  # the left panel is the source

    decoded = vae.decode(sampled["samples"])
    with pytest.raises(ValueError, match="left panel does not show the source"):  # random weights: noise there
        ICEditCrop.execute(decoded, layout)
    edited, comparison = ICEditCrop.execute(decoded, layout, check_source=False).result
    assert edited.shape == (1, 50, 48, 3)
    assert comparison.shape == (1, 50, 96, 3)
    assert torch.equal(comparison[:, :, :48], image)


def test_crop_refuses_a_diptych_from_another_layout(vae):
    _, _, layout = ICEditDiptych.execute(source_image(48, 50), 32).result
    other, _, _ = ICEditDiptych.execute(source_image(100, 40), 32).result
    with pytest.raises(ValueError, match="layout"):
        ICEditCrop.execute(other, layout)


def test_fill_conditioning_refuses_a_foreign_mask(clip, vae):
    diptych, _, _ = ICEditDiptych.execute(source_image(), 32).result
    _, other_mask, _ = ICEditDiptych.execute(source_image(100, 40), 32).result
    positive, negative, _, _ = ICEditPromptEncode.execute(clip, "x", "released", "", 50.0).result
    with pytest.raises(ValueError, match="MASK is"):
        ICEditFillConditioning.execute(positive, negative, vae, diptych, other_mask)


def test_prompt_encode_refuses_empty_instruction_and_bad_template(clip):
    with pytest.raises(ValueError, match="instruction is empty"):
        ICEditPromptEncode.execute(clip, "  ", "released", "", 50.0)
    with pytest.raises(ValueError, match=r"\{instruction\}"):
        ICEditPromptEncode.execute(clip, "make it red", "custom", "no field here", 50.0)


def test_normal_lora_in_the_official_layout_loads_with_zero_unloaded_keys(smoke_files, tmp_path, caplog):
    config = smoke_models.TINY_FLUX_FILL
    shapes = smoke_adapters.lora_target_shapes(config["hidden_size"], config["depth"], config["depth_single_blocks"])
    lora = smoke_adapters.random_lora_state_dict(shapes, rank=8, seed=5)
    assert all(key.startswith("transformer.") for key in lora)
    lora_dir = tmp_path / "loras"
    lora_dir.mkdir()
    safetensors.torch.save_file(lora, str(lora_dir / "tiny-icedit-normal-lora.safetensors"))
    folder_paths.add_model_folder_path("loras", str(lora_dir))

    model = smoke_models.build_flux_fill(config, seed=0)
    with caplog.at_level(logging.WARNING):
        (patched,) = comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(
            model, "tiny-icedit-normal-lora.safetensors", 1.0)
    not_loaded = [r.getMessage() for r in caplog.records if "not loaded" in r.getMessage().lower()]
    assert not_loaded == []
    # Every adapter module became one patch (q/k/v each land on a slice of a fused weight).
    key_map = comfy.lora.model_lora_keys_unet(model.model, {})
    patches = comfy.lora.load_lora(lora, key_map)
    assert len(patches) == len(shapes)
    patch_count = sum(len(v) for v in patched.patches.values())
    assert patch_count == len(shapes)

    # And the patched model computes something else than the base model.
    x = torch.randn(1, 16, 4, 8)
    context = torch.randn(1, 5, config["context_in_dim"])
    y = torch.randn(1, config["vec_in_dim"])
    concat = torch.randn(1, 80, 4, 8)
    sigma = torch.tensor([0.7])

    def predict(patcher):
        comfy.model_management.load_models_gpu([patcher])
        with torch.no_grad():
            return patcher.model.apply_model(x, sigma, c_crossattn=context, y=y, c_concat=concat,
                                             guidance=torch.tensor([50.0])).clone()

    base = predict(model)
    with_lora = predict(patched)
    assert not torch.allclose(base, with_lora)
    comfy.model_management.unload_all_models()
    torch.testing.assert_close(predict(model), base, rtol=0, atol=0)
