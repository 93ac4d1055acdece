"""Which model files the shipped workflows load: the official releases' names, and the smoke-test stand-ins.
Stdlib only (the runner reads it without ComfyUI)."""

# (node type, input name) -> (ComfyUI models folders: the current name first, then its older alias;
# the file name as the official release names it)
REAL_MODELS = {
    ("UNETLoader", "unet_name"): (("diffusion_models", "unet"), "flux1-fill-dev.safetensors"),
    ("DualCLIPLoader", "clip_name1"): (("text_encoders", "clip"), "clip_l.safetensors"),
    ("DualCLIPLoader", "clip_name2"): (("text_encoders", "clip"), "t5xxl_fp16.safetensors"),
    ("VAELoader", "vae_name"): (("vae",), "ae.safetensors"),
    ("LoraLoaderModelOnly", "lora_name"): (("loras",), "ICEdit-normal-lora/pytorch_lora_weights.safetensors"),
    ("ICEditMoELoRALoader", "lora_name"): (("loras",), "ICEdit-MoE-LoRA/pytorch_lora_weights.safetensors"),
    ("ControlNetLoader", "control_net_name"): (("controlnet",), "flux-canny-controlnet-v3.safetensors"),
    ("UpscaleModelLoader", "model_name"): (("upscale_models",), "RealESRGAN_x4plus.pth"),
    # A folder: Qwen/Qwen2.5-VL-7B-Instruct downloaded whole (the paper judged with the 72B model).
    ("ICEditVLMJudgeLocal", "model_folder"): (("vlm",), "Qwen2.5-VL-7B-Instruct"),
}

# role -> (ComfyUI models folder, file name) of the generated random-weight stand-ins
SMOKE_FILES = {
    "unet": ("diffusion_models", "icedit-smoke-test-flux-fill.safetensors"),
    "vae": ("vae", "icedit-smoke-test-ae.safetensors"),
    "text_encoders": ("text_encoders", "icedit-smoke-test-text-encoders.safetensors"),
    "lora": ("loras", "icedit-smoke-test-normal-lora.safetensors"),
    "moe_lora": ("loras", "icedit-smoke-test-moe-lora.safetensors"),
    "vlm": ("vlm", "icedit-smoke-test-qwen2-vl"),  # a Hugging Face model folder
    "controlnet": ("controlnet", "icedit-smoke-test-flux-controlnet.safetensors"),
    "upscale": ("upscale_models", "icedit-smoke-test-upscaler-x2.safetensors"),
}

# (node type, input name) -> smoke role, for the loaders whose real file has a smoke stand-in
SMOKE_ROLE = {
    ("UNETLoader", "unet_name"): "unet",
    ("VAELoader", "vae_name"): "vae",
    ("LoraLoaderModelOnly", "lora_name"): "lora",
    ("ICEditMoELoRALoader", "lora_name"): "moe_lora",
    ("ICEditVLMJudgeLocal", "model_folder"): "vlm",
    ("ControlNetLoader", "control_net_name"): "controlnet",
    ("UpscaleModelLoader", "model_name"): "upscale",
}
