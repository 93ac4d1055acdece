"""Which model files the shipped workflows load: the official releases' names, and the smoke-test stand-ins.
The one table of them (MODEL_FILES): the runner's model checks, the workflows' Read me notes
(devtools/build_workflows.py) and README.md's model table are made from it. Stdlib only (the runner reads it
without ComfyUI)."""
import dataclasses

# (node type, input name) of every loader input that names a model file -> the ComfyUI models folders it reads
# (the current name first, then its older alias)
LOADER_INPUTS = {
    ("UNETLoader", "unet_name"): ("diffusion_models", "unet"),
    ("DualCLIPLoader", "clip_name1"): ("text_encoders", "clip"),
    ("DualCLIPLoader", "clip_name2"): ("text_encoders", "clip"),
    ("CLIPLoader", "clip_name"): ("text_encoders", "clip"),
    ("VAELoader", "vae_name"): ("vae",),
    ("LoraLoaderModelOnly", "lora_name"): ("loras",),
    ("ICEditMoELoRALoader", "lora_name"): ("loras",),
    ("ControlNetLoader", "control_net_name"): ("controlnet",),
    ("UpscaleModelLoader", "model_name"): ("upscale_models",),
    ("ICEditVLMJudgeLocal", "model_folder"): ("vlm",),
    ("ICEditTextMask", "model_folder"): ("clipseg",),
}


@dataclasses.dataclass(frozen=True)
class ModelFile:
    """One row of the model table: files (or one Hugging Face model folder) that go in one models folder and come
    from one source. The README's table and the workflows' Read me notes are rendered from these rows."""

    names: tuple[str, ...]  # as the loaders' widgets name them, relative to the models folder
    folder: str  # the ComfyUI models folder they go in (ComfyUI/models/<folder>/), LOADER_INPUTS' current name
    source: str  # where to get them: a Hugging Face repository, or a release page
    role: str  # the role of their smoke-test stand-in (SMOKE_FILES)
    used_by: str = ""  # what needs them, for the files only some workflows load (the README says it)
    remark: str = ""
    hf_folder: bool = False  # a whole Hugging Face model folder, not a file

    def paths(self) -> list[str]:
        """'folder/name' of each, a model folder with a trailing slash."""
        return [f"{self.folder}/{name}" + ("/" if self.hf_folder else "") for name in self.names]


# The files the shipped workflows name, as the official releases name them, in the tables' order.
MODEL_FILES = (
    ModelFile(("flux1-fill-dev.safetensors",), "diffusion_models", "black-forest-labs/FLUX.1-Fill-dev", "unet"),
    ModelFile(("clip_l.safetensors", "t5xxl_fp16.safetensors"), "text_encoders", "comfyanonymous/flux_text_encoders",
              "text_encoders"),
    ModelFile(("ae.safetensors",), "vae", "black-forest-labs/FLUX.1-Fill-dev", "vae", remark="or FLUX.1-dev"),
    ModelFile(("ICEdit-normal-lora/pytorch_lora_weights.safetensors",), "loras", "RiverZ/normal-lora", "lora"),
    ModelFile(("ICEdit-MoE-LoRA/pytorch_lora_weights.safetensors",), "loras", "sanaka87/ICEdit-MoE-LoRA", "moe_lora"),
    ModelFile(("Qwen2.5-VL-7B-Instruct",), "vlm", "Qwen/Qwen2.5-VL-7B-Instruct", "vlm", used_by="Early Filter judge",
              remark="the paper judged with the 72B; any image-text-to-text model folder works", hf_folder=True),
    ModelFile(("flux-canny-controlnet-v3.safetensors",), "controlnet", "XLabs-AI/flux-controlnet-canny-v3",
              "controlnet", used_by="ControlNet workflow"),
    ModelFile(("RealESRGAN_x4plus.pth",), "upscale_models", "xinntao/Real-ESRGAN releases", "upscale",
              used_by="upscale workflow"),
    ModelFile(("clipseg-rd64-refined",), "clipseg", "CIDAS/clipseg-rd64-refined", "clipseg",
              used_by="ICEdit Text Mask, text-region workflow", hf_folder=True),
    ModelFile(("FLUX.1-Turbo-Alpha.safetensors",), "loras", "alimama-creative/FLUX.1-Turbo-Alpha", "turbo_lora",
              used_by="fast workflow", remark="its `diffusion_pytorch_model.safetensors`, renamed"),
    ModelFile(("flux1-kontext-dev.safetensors",), "diffusion_models", "black-forest-labs/FLUX.1-Kontext-dev",
              "kontext_unet", used_by="Kontext workflows", remark="same text encoders and VAE as FLUX.1 Fill"),
    ModelFile(("qwen_image_edit_2509_fp8_e4m3fn.safetensors",), "diffusion_models", "Comfy-Org/Qwen-Image-Edit_ComfyUI",
              "qwen_unet", used_by="Qwen-Image-Edit workflow"),
    ModelFile(("qwen_2.5_vl_7b_fp8_scaled.safetensors",), "text_encoders", "Comfy-Org/Qwen-Image_ComfyUI",
              "qwen_text_encoder", used_by="Qwen-Image-Edit workflow", remark="CLIPLoader, type qwen_image"),
    ModelFile(("qwen_image_vae.safetensors",), "vae", "Comfy-Org/Qwen-Image_ComfyUI", "qwen_vae",
              used_by="Qwen-Image-Edit workflow"),
)

# file as the workflows name it -> the role of its smoke-test stand-in (SMOKE_FILES). Keyed by file, because one
# loader type may load two of them (ICEdit's LoRA and Turbo).
REAL_MODELS = {name: model.role for model in MODEL_FILES for name in model.names}


def note_line(model: ModelFile) -> str:
    """The model's line in a workflow's Read me: where it goes and where it comes from."""
    paths = ", ".join(f"`{path}`" for path in model.paths())
    source = ("the whole Hugging Face folder " if model.hf_folder else "") + model.source
    return f"{paths} — {source}" + (f" ({model.remark})" if model.remark else "")


# README.md's model table sits between these lines; `python -m comfyui_icedit.devtools.build_workflows --readme`
# rewrites it from MODEL_FILES.
README_TABLE_START = ("<!-- model-files:start (written from icedit_core/model_files.py by "
                      "python -m comfyui_icedit.devtools.build_workflows --readme) -->")
README_TABLE_END = "<!-- model-files:end -->"


def readme_table() -> str:
    """README.md's model table (markdown, one row per MODEL_FILES entry), without the marker lines."""
    rows = ["| file | folder (`ComfyUI/models/...`) | source |", "|---|---|---|"]
    for model in MODEL_FILES:
        if model.hf_folder:
            files, folder = "the whole model folder", model.paths()[0]
        else:
            subfolders = {name.rpartition("/")[0] for name in model.names}
            if len(subfolders) != 1:  # the row has one folder column
                raise ValueError(f"MODEL_FILES row {model.names}: files in different subfolders need a row each")
            files = ", ".join(f"`{name.rpartition('/')[2]}`" for name in model.names)
            folder = "/".join(filter(None, (model.folder, subfolders.pop()))) + "/"
        notes = "; ".join(filter(None, (model.used_by, model.remark)))
        rows.append(f"| {files} | `{folder}` | {model.source}" + (f" ({notes})" if notes else "") + " |")
    return "\n".join(rows) + "\n"


def with_readme_table(readme: str, path: str = "README.md") -> str:
    """The README's text with the block between the marker lines replaced by readme_table()."""
    start, end = readme.find(README_TABLE_START), readme.find(README_TABLE_END)
    if readme.count(README_TABLE_START) != 1 or readme.count(README_TABLE_END) != 1 or end < start:
        raise ValueError(f"{path} needs one line {README_TABLE_START!r} and after it one line {README_TABLE_END!r} "
                         "around the model table")
    return readme[:start] + README_TABLE_START + "\n" + readme_table() + readme[end:]


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
    "kontext_unet": ("diffusion_models", "icedit-smoke-test-flux-kontext.safetensors"),  # Flux without Fill channels
    "qwen_unet": ("diffusion_models", "icedit-smoke-test-qwen-image.safetensors"),  # 1 block at the fixed width
    "qwen_text_encoder": ("text_encoders", "icedit-smoke-test-qwen-text-encoder.safetensors"),
    "qwen_vae": ("vae", "icedit-smoke-test-qwen-vae.safetensors"),
}

# The environment variable that makes the pack register its smoke-test text-encoder loader (nodes/smoke_test.py
# reads it): the runner sets it on the servers it starts for smoke runs, the tests on theirs.
SMOKE_NODES_ENV = "ICEDIT_SMOKE_TEST_NODES"

# (node type, input name) -> value, for checks that random weights cannot pass and sizes a CPU cannot afford: a
# random model draws noise on the diptych's left panel too, so ICEdit Crop's check that the left panel shows the
# source is off; Kontext's preferred sizes (about 1 megapixel) are off, so the smoke source keeps its small size, and
# Qwen-Image-Edit's reference is 0.01 megapixels (at 1 MP one call of the smoke Qwen-Image takes 36 s on a CPU).
SMOKE_SETTINGS = {
    ("ICEditCrop", "check_source"): False,
    ("ICEditKontextEncode", "kontext_size"): False,
    ("ICEditMultiTurn", "kontext_size"): False,
    ("ICEditQwenImageEditEncode", "reference_megapixels"): 0.01,
}
