"""Small random-weight Flux Fill, Flux Kontext, VAE, text encoders and ICEdit LoRA (and, from smoke_qwen.py,
Qwen-Image-Edit's three files), built with ComfyUI's own classes.

They stand in for the real weights (which cannot be downloaded here) in the smoke run and the tests. What they
produce is noise; what they prove is that every file loads through ComfyUI's real loaders and runs through its
real executor. Imports ComfyUI: run under devtools/bootstrap.py.
"""
from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import shutil

import comfy.ldm.models.autoencoder
import comfy.model_management
import comfy.model_patcher
import comfy.sd1_clip
import comfy.supported_models
import comfy.text_encoders.t5
import safetensors.torch
import torch

from ..nodes.smoke_test import SMOKE_TEST_CONFIG_KEY, SmokeTestFluxTextEncoders
from . import smoke_adapters
from ..icedit_core.model_files import SMOKE_FILES

# Text encoders: the real tokenizers, tiny bodies. The Flux model below reads T5's d_model as its context
# width and CLIP's hidden size as its pooled-vector width.
CLIP_L_CONFIG = {"hidden_act": "quick_gelu", "hidden_size": 64, "intermediate_size": 128,
                 "num_attention_heads": 2, "num_hidden_layers": 2, "max_position_embeddings": 77,
                 "vocab_size": 49408, "layer_norm_eps": 1e-5, "projection_dim": 64,
                 "bos_token_id": 0, "eos_token_id": 49407, "pad_token_id": 1}
T5XXL_CONFIG = {"d_ff": 128, "d_kv": 16, "d_model": 64, "num_heads": 4, "num_layers": 2, "vocab_size": 32128,
                "dense_act_fn": "gelu_pytorch_tanh", "is_gated_act": True, "layer_norm_epsilon": 1e-6,
                "relative_attention_num_buckets": 32, "model_type": "t5", "eos_token_id": 1, "pad_token_id": 0}


def flux_fill_config(hidden_size: int = 3072, num_heads: int = 24, axes_dim=None, depth: int = 1,
                     depth_single_blocks: int = 1) -> dict:
    """A FLUX.1 Fill unet config. The defaults are the smallest that ComfyUI's UNETLoader detects (it fixes 24
    heads of 128 channels, so 3072 wide; depth is counted from the keys): 1 double + 1 single block. Without
    axes_dim the head is split over the RoPE axes in FLUX.1's proportions (128 -> 16, 56, 56)."""
    if axes_dim is None:
        head_dim = hidden_size // num_heads
        side = head_dim * 7 // 16
        axes_dim = (head_dim - 2 * side, side, side)
    if hidden_size != num_heads * sum(axes_dim):
        raise ValueError(f"hidden_size {hidden_size} must equal num_heads {num_heads} x sum(axes_dim) {sum(axes_dim)}")
    return {"image_model": "flux", "in_channels": 96, "out_channels": 16, "patch_size": 2,
            "hidden_size": hidden_size, "num_heads": num_heads, "mlp_ratio": 4.0, "axes_dim": list(axes_dim),
            "theta": 10000, "qkv_bias": True, "guidance_embed": True, "depth": depth,
            "depth_single_blocks": depth_single_blocks, "context_in_dim": T5XXL_CONFIG["d_model"],
            "vec_in_dim": CLIP_L_CONFIG["hidden_size"]}


def flux_kontext_config(**kwargs) -> dict:
    """A FLUX.1 Kontext [dev] unet config: FLUX.1 without Fill's extra input channels (ComfyUI detects it as its
    plain Flux; the source reaches it as reference latents, not channels)."""
    return {**flux_fill_config(**kwargs), "in_channels": 16}


# The in-process tests' models: the same classes, narrow enough to sample in milliseconds.
TINY_FLUX_FILL = flux_fill_config(hidden_size=128, num_heads=2)  # RoPE axes 8, 28, 28
TINY_FLUX_KONTEXT = flux_kontext_config(hidden_size=128, num_heads=2)


@torch.no_grad()
def randomize_(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Deterministic random weights. ComfyUI builds layers uninitialised (comfy.ops.disable_weight_init), so
    every parameter is set here: matrices ~ N(0, 1/fan_in), 1-d scales 1, biases 0."""
    generators = {}  # one per device, so that a model built on a GPU is randomized there
    for name, param in module.named_parameters():
        if name.endswith("bias"):
            param.zero_()
        elif param.ndim <= 1:
            param.fill_(1.0)
        else:
            if param.device not in generators:
                generators[param.device] = torch.Generator(device=param.device).manual_seed(seed)
            fan_in = param[0].numel()
            noise = torch.randn(param.shape, generator=generators[param.device], device=param.device)
            param.copy_(noise / fan_in ** 0.5)
    return module


def build_flux_fill(unet_config: dict, seed: int = 0, dtype=torch.float32, device=None,
                    supported_model=comfy.supported_models.FluxInpaint) -> comfy.model_patcher.ModelPatcher:
    """A random FLUX.1 Fill as ComfyUI loads one: supported_models.FluxInpaint -> model_base.Flux -> patcher
    (supported_models.Flux with a Kontext config: build_flux_kontext). `device` builds the weights there directly
    (a full-size model does not fit in CPU memory in fp32)."""
    model_config = supported_model(dict(unet_config))
    model_config.set_inference_dtype(dtype, None)
    model = model_config.get_model({}, device=device)
    randomize_(model.diffusion_model, seed)
    model.diffusion_model.to(dtype)
    device = comfy.model_management.get_torch_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=device,
                                            offload_device=comfy.model_management.unet_offload_device())


def build_flux_kontext(unet_config: dict, seed: int = 0, dtype=torch.float32, device=None
                       ) -> comfy.model_patcher.ModelPatcher:
    """A random FLUX.1 Kontext [dev] as ComfyUI loads one (supported_models.Flux)."""
    return build_flux_fill(unet_config, seed, dtype, device, supported_model=comfy.supported_models.Flux)


def flux_vae_state_dict(seed: int = 1) -> dict[str, torch.Tensor]:
    """A random Flux VAE (16 latent channels) in the layout ComfyUI's VAE loader detects (ae.safetensors)."""
    ddconfig = {"double_z": True, "z_channels": 16, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
                "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
    vae = comfy.ldm.models.autoencoder.AutoencodingEngine(
        regularizer_config={"target": "comfy.ldm.models.autoencoder.DiagonalGaussianRegularizer"},
        encoder_config={"target": "comfy.ldm.modules.diffusionmodules.model.Encoder", "params": ddconfig},
        decoder_config={"target": "comfy.ldm.modules.diffusionmodules.model.Decoder", "params": ddconfig})
    return randomize_(vae, seed).state_dict()


def text_encoders_state_dict(seed: int = 2) -> dict[str, torch.Tensor]:
    model = SmokeTestFluxTextEncoders(CLIP_L_CONFIG, T5XXL_CONFIG, dtype=torch.float32)
    randomize_(model, seed)
    # CLIP's text projection and logit scale are buffers-like parameters the loader expects as they are.
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def adapter_state_dict(unet_config: dict, num_experts: int, seed: int) -> dict[str, torch.Tensor]:
    """An ICEdit adapter in the released layout sized to the model: normal LoRA (0 experts) or MoE-LoRA."""
    shapes = smoke_adapters.lora_target_shapes(unet_config["hidden_size"], unet_config["depth"],
                                             unet_config["depth_single_blocks"],
                                             in_channels=unet_config["in_channels"])
    return smoke_adapters.random_moe_lora_state_dict(shapes, rank=32, num_experts=num_experts, seed=seed)


def turbo_lora_state_dict(unet_config: dict, seed: int = 8) -> dict[str, torch.Tensor]:
    """A stand-in for FLUX.1-Turbo-Alpha: a plain LoRA in its layout, sized to the model."""
    shapes = smoke_adapters.turbo_layout_shapes(unet_config["hidden_size"], unet_config["depth"],
                                                unet_config["depth_single_blocks"])
    return smoke_adapters.random_lora_state_dict(shapes, rank=16, seed=seed)


def flux_controlnet_state_dict(seed: int = 6) -> dict[str, torch.Tensor]:
    """A random Flux ControlNet in the XLabs layout ComfyUI's ControlNetLoader detects: one double block at
    the width the loader fixes (3072), image hint input, conditioned on the smoke text encoders."""
    import comfy.ldm.flux.controlnet
    import comfy.ops

    config = {k: v for k, v in flux_fill_config(depth=1, depth_single_blocks=0).items() if k != "image_model"}
    config["in_channels"] = 16  # a ControlNet sees the 16-channel latent, not Fill's extra channels
    model = comfy.ldm.flux.controlnet.ControlNetFlux(operations=comfy.ops.disable_weight_init, **config)
    return randomize_(model, seed).state_dict()


def upscaler_state_dict(seed: int = 7) -> dict[str, torch.Tensor]:
    """A random 2x Real-ESRGAN Compact (SRVGGNet) upscaler, small, that spandrel (ComfyUI's loader) detects."""
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(seed)
    return Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2, act_type="prelu").state_dict()


# Qwen2-VL's image placeholder tokens in the Qwen2.5 tokenizer that ships with ComfyUI.
_QWEN_VISION_TOKENS = {"image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
                       "vision_end_token_id": 151653}
# A minimal chat template: images as <|vision_start|><|image_pad|><|vision_end|>, then the text.
_QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


# The tiny Qwen-VL judges' text model: the real Qwen2.5 vocabulary (the tokenizer's image tokens index it), tiny body.
_TINY_QWEN_TEXT = {"vocab_size": 151936, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                   "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 4096,
                   "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}}


def _save_tiny_qwen_vl(folder: str, seed: int, config_class, model_class, processor_class, vision_config: dict
                       ) -> str:
    """A random-weight Qwen-VL of the given transformers classes with a real processor - the tokenizer ComfyUI
    ships for Qwen - saved as a Hugging Face folder that transformers' Auto classes load."""
    import comfy.text_encoders.flux  # a module inside the namespace package comfy/text_encoders/
    from transformers import AutoTokenizer, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    tokenizer = AutoTokenizer.from_pretrained(
        os.path.join(os.path.dirname(comfy.text_encoders.flux.__file__), "qwen25_tokenizer"))
    config = config_class(text_config=dict(_TINY_QWEN_TEXT), vision_config=vision_config, **_QWEN_VISION_TOKENS)
    torch.manual_seed(seed)
    model = model_class(config)
    processor = processor_class(image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112),
                                tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(),
                                chat_template=_QWEN_CHAT_TEMPLATE)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def save_tiny_qwen2_vl(folder: str, seed: int = 5) -> str:
    """A random-weight Qwen2-VL (about 10 M parameters, mostly the vocabulary) with a real processor."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    return _save_tiny_qwen_vl(folder, seed, Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor,
                              {"depth": 1, "embed_dim": 32, "hidden_size": 32, "num_heads": 2, "mlp_ratio": 2,
                               "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3})


def save_tiny_qwen25_vl(folder: str, seed: int = 15) -> str:
    """A random-weight Qwen2.5-VL (EditScore's base model family) in the same small sizes and with the same real
    processor as save_tiny_qwen2_vl: its vision tower has Qwen2.5-VL's windowed attention and output projection."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    return _save_tiny_qwen_vl(folder, seed, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                               "out_hidden_size": 32, "patch_size": 14, "spatial_merge_size": 2,
                               "temporal_patch_size": 2, "window_size": 56, "fullatt_block_indexes": [1],
                               "in_channels": 3})


def comfy_clip_tokenizer():
    """The CLIP tokenizer ComfyUI ships (nothing downloaded), for the tiny CLIP-family test models."""
    import comfy.sd1_clip
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(os.path.join(os.path.dirname(comfy.sd1_clip.__file__), "sd1_tokenizer"))


def save_tiny_clip(folder: str, seed: int = 8) -> str:
    """A random-weight CLIP (image and text towers) with ComfyUI's CLIP tokenizer, for metric tests."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = comfy_clip_tokenizer()
    config = CLIPConfig(
        text_config={"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 77},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16)
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(folder)
    CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                  tokenizer=tokenizer).save_pretrained(folder)
    return folder


def save_tiny_clipseg(folder: str, seed: int = 10) -> str:
    """A random-weight CLIPSeg (CLIPSegForImageSegmentation) with ComfyUI's CLIP tokenizer, for the text mask."""
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor, ViTImageProcessor

    tokenizer = comfy_clip_tokenizer()
    config = CLIPSegConfig(
        text_config={"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 77},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 64, "patch_size": 16},
        projection_dim=16, extract_layers=[0, 1], reduce_dim=16, decoder_num_attention_heads=2,
        decoder_intermediate_size=32)
    torch.manual_seed(seed)
    CLIPSegForImageSegmentation(config).save_pretrained(folder)
    CLIPSegProcessor(image_processor=ViTImageProcessor(size={"height": 64, "width": 64}, do_rescale=True),
                     tokenizer=tokenizer).save_pretrained(folder)
    return folder


def save_tiny_dino(folder: str, seed: int = 9) -> str:
    """A random-weight ViT in DINO ViT-S/16's layout (patch 16), tiny, for metric tests."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(seed)
    ViTModel(ViTConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                       image_size=32, patch_size=16)).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def _generator_fingerprint() -> str:
    """Changes whenever the code that makes the files changes, so cached files are never stale."""
    digest = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.path.join(here, "smoke_models.py"), os.path.join(here, "..", "icedit_core", "model_files.py"),
                 os.path.join(here, "smoke_adapters.py"), os.path.join(here, "..", "icedit_core", "adapter_file.py"),
                 os.path.join(here, "..", "nodes", "smoke_test.py"), os.path.join(here, "smoke_qwen.py")):
        with open(path, "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()[:16]


def _save(state_dict, path, metadata=None):
    partial = path + ".partial"
    safetensors.torch.save_file(state_dict, partial, metadata=metadata)
    os.replace(partial, path)  # never leave a half-written file under the final name


def ensure_smoke_models(cache_root: str, log=print) -> str:
    """Generate the smoke-test model folder once (keyed by the generator's source) and return its path: a
    ComfyUI-style models folder with diffusion_models/, vae/, text_encoders/ and loras/ (SMOKE_FILES)."""
    root = os.path.join(cache_root, "smoke-models-" + _generator_fingerprint())
    done = os.path.join(root, ".complete")
    if os.path.exists(done):
        return root
    os.makedirs(cache_root, exist_ok=True)
    # One generator at a time (test tiers side by side, several runners at once): a second process waits, then
    # finds the folder complete, instead of rewriting files the first one is already reading.
    with open(os.path.join(cache_root, ".smoke-models.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(done):
            _generate(cache_root, root, log)
    return root


def _generate(cache_root: str, root: str, log) -> None:
    done = os.path.join(root, ".complete")
    for stale in glob.glob(os.path.join(cache_root, "smoke-models-*")):  # made by older generator code
        if stale != root:
            shutil.rmtree(stale, ignore_errors=True)
    log(f"generating small random-weight smoke-test models in {root} (once, about a minute)")

    def target(role):
        folder, name = SMOKE_FILES[role]
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        return os.path.join(root, folder, name)

    def bf16(state_dict):
        return {k: v.to(torch.bfloat16).contiguous() for k, v in state_dict.items()}

    unet_config = flux_fill_config()
    flux = build_flux_fill(unet_config, seed=0).model.diffusion_model
    _save(bf16(flux.state_dict()), target("unet"))
    del flux
    kontext = build_flux_kontext(flux_kontext_config(), seed=11).model.diffusion_model
    _save(bf16(kontext.state_dict()), target("kontext_unet"))
    del kontext
    _save(bf16(flux_vae_state_dict()), target("vae"))
    _save(text_encoders_state_dict(), target("text_encoders"),
          metadata={SMOKE_TEST_CONFIG_KEY: json.dumps({"clip_l": CLIP_L_CONFIG, "t5xxl": T5XXL_CONFIG})})
    _save(bf16(adapter_state_dict(unet_config, num_experts=0, seed=3)), target("lora"))
    _save(bf16(adapter_state_dict(unet_config, num_experts=4, seed=4)), target("moe_lora"))
    _save(bf16(turbo_lora_state_dict(unet_config)), target("turbo_lora"))
    save_tiny_qwen2_vl(target("vlm"))
    save_tiny_clipseg(target("clipseg"))
    _save(bf16(flux_controlnet_state_dict()), target("controlnet"))
    _save(upscaler_state_dict(), target("upscale"))
    from .smoke_qwen import save_qwen_smoke_files  # imports smoke_models itself (randomize_)

    save_qwen_smoke_files(root)
    with open(done, "w") as handle:
        handle.write("ok\n")
