"""Which model files the shipped workflows load: the official releases' names, and the smoke-test stand-ins.
Stdlib only (the runner reads it without ComfyUI)."""

# (node type, input name) of every loader input that names a model file -> the ComfyUI models folders it reads
# (the current name first, then its older alias)
LOADER_INPUTS = {
    ("UNETLoader", "unet_name"): ("diffusion_models", "unet"),
    ("DualCLIPLoader", "clip_name1"): ("text_encoders", "clip"),
    ("DualCLIPLoader", "clip_name2"): ("text_encoders", "clip"),
    ("VAELoader", "vae_name"): ("vae",),
    ("LoraLoaderModelOnly", "lora_name"): ("loras",),
    ("ICEditMoELoRALoader", "lora_name"): ("loras",),
    ("ControlNetLoader", "control_net_name"): ("controlnet",),
    ("UpscaleModelLoader", "model_name"): ("upscale_models",),
    ("ICEditVLMJudgeLocal", "model_folder"): ("vlm",),
    ("ICEditTextMask", "model_folder"): ("clipseg",),
}

# The files the shipped workflows name, as the official releases name them -> the role of their smoke-test
# stand-in (SMOKE_FILES). Keyed by file, because one loader type may load two of them (ICEdit's LoRA and Turbo).
REAL_MODELS = {
    "flux1-fill-dev.safetensors": "unet",
    "clip_l.safetensors": "text_encoders",
    "t5xxl_fp16.safetensors": "text_encoders",
    "ae.safetensors": "vae",
    "ICEdit-normal-lora/pytorch_lora_weights.safetensors": "lora",
    "ICEdit-MoE-LoRA/pytorch_lora_weights.safetensors": "moe_lora",
    "FLUX.1-Turbo-Alpha.safetensors": "turbo_lora",
    "flux-canny-controlnet-v3.safetensors": "controlnet",
    "RealESRGAN_x4plus.pth": "upscale",
    # A folder: Qwen/Qwen2.5-VL-7B-Instruct downloaded whole (the paper judged with the 72B model).
    "Qwen2.5-VL-7B-Instruct": "vlm",
    "clipseg-rd64-refined": "clipseg",  # a folder: CIDAS/clipseg-rd64-refined
}

# role -> (ComfyUI models folder, file name) of the generated random-weight stand-ins
SMOKE_FILES = {
    "unet": ("diffusion_models", "icedit-smoke-test-flux-fill.safetensors"),
    "vae": ("vae", "icedit-smoke-test-ae.safetensors"),
    "text_encoders": ("text_encoders", "icedit-smoke-test-text-encoders.safetensors"),
    "lora": ("loras", "icedit-smoke-test-normal-lora.safetensors"),
    "turbo_lora": ("loras", "icedit-smoke-test-turbo-lora.safetensors"),  # the Turbo-Alpha layout, both streams
    "moe_lora": ("loras", "icedit-smoke-test-moe-lora.safetensors"),
    "vlm": ("vlm", "icedit-smoke-test-qwen2-vl"),  # a Hugging Face model folder
    "clipseg": ("clipseg", "icedit-smoke-test-clipseg"),  # a Hugging Face model folder
    "controlnet": ("controlnet", "icedit-smoke-test-flux-controlnet.safetensors"),
    "upscale": ("upscale_models", "icedit-smoke-test-upscaler-x2.safetensors"),
}

# The environment variable that makes the pack register its smoke-test text-encoder loader (nodes/smoke_test.py
# reads it): the runner sets it on the servers it starts for smoke runs, the tests on theirs.
SMOKE_NODES_ENV = "ICEDIT_SMOKE_TEST_NODES"

# (node type, input name) -> value, for checks that random weights cannot pass: a random model draws noise on
# the diptych's left panel too, so ICEdit Crop's check that the left panel shows the source is off.
SMOKE_SETTINGS = {
    ("ICEditCrop", "check_source"): False,
}
