"""Writes the shipped workflows (workflows/icedit_<variant>.json, UI format) from one description, so that the
six variants stay consistent. `python -m headless.build_workflows` rewrites them all; tests/test_workflows_built.py
checks that the committed files are what this script writes. Stdlib only.
"""

import importlib.util
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = ["basic", "moe", "early_filter", "controlnet", "upscale", "lowvram", "multiturn"]


def _pack_version() -> str:
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("version"):
                return line.split("=", 1)[1].strip().strip('"')
    raise RuntimeError("no version in pyproject.toml")


def _released_template() -> str:
    spec = importlib.util.spec_from_file_location("icedit_prompts", os.path.join(ROOT, "icedit_core", "prompts.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RELEASED_TEMPLATE


PACK = {"cnr_id": "comfyui-icedit", "ver": _pack_version()}
CORE = {"cnr_id": "comfy-core", "ver": "0.3.75"}


class Graph:
    """Nodes and links in the frontend's UI format (pos, size, flags, order, mode, properties: its schema)."""

    def __init__(self):
        self.nodes, self.links = [], []

    def add(self, node_id, node_type, pos, size, widgets, title=None, ours=False, inputs=(), outputs=()):
        node = {
            "id": node_id,
            "type": node_type,
            "pos": pos,
            "size": size,
            "flags": {},
            "order": len(self.nodes),
            "mode": 0,
            "inputs": [dict(i) for i in inputs],
            "outputs": [dict(o, links=[]) for o in outputs],
            "properties": {"Node name for S&R": node_type, **(PACK if ours else CORE)},
            "widgets_values": widgets,
        }
        if title:
            node["title"] = title
        self.nodes.append(node)
        return node

    def link(self, source_id, source_slot, target_id, input_name):
        source = next(n for n in self.nodes if n["id"] == source_id)
        target = next(n for n in self.nodes if n["id"] == target_id)
        link_id = len(self.links) + 1
        link_type = source["outputs"][source_slot]["type"]
        source["outputs"][source_slot]["links"].append(link_id)
        source["outputs"][source_slot]["slot_index"] = source_slot
        slot = next(i for i, s in enumerate(target["inputs"]) if s["name"] == input_name)
        if target["inputs"][slot]["type"] not in (link_type, "*"):
            raise ValueError(f"{source_id}:{source_slot} ({link_type}) cannot feed {target_id}.{input_name}")
        target["inputs"][slot]["link"] = link_id
        self.links.append([link_id, source_id, source_slot, target_id, slot, link_type])


def I(name, socket_type):  # noqa: E743 (an input socket, short for the long tables below)
    return {"name": name, "type": socket_type, "link": None}


def O(name, socket_type):  # noqa: E743 (an output socket)
    return {"name": name, "type": socket_type}


def build(variant: str) -> dict:
    if variant == "multiturn":
        return build_multiturn()
    g = Graph()
    VARIANT = variant
    CN, UP, LOWVRAM = VARIANT == "controlnet", VARIANT == "upscale", VARIANT == "lowvram"
    g.add(
        1,
        "LoadImage",
        [40, 420],
        [320, 360],
        ["icedit_example.png", "image"],
        title="Source image",
        outputs=[O("IMAGE", "IMAGE"), O("MASK", "MASK")],
    )
    g.add(
        2,
        "ICEditDiptych",
        [400, 420],
        [300, 100],
        [512],
        ours=True,
        inputs=[I("image", "IMAGE")],
        outputs=[O("diptych", "IMAGE"), O("mask", "MASK"), O("layout", "ICEDIT_LAYOUT")],
    )
    g.add(
        3,
        "UNETLoader",
        [40, 60],
        [320, 90],
        ["flux1-fill-dev.safetensors", "fp8_e4m3fn" if LOWVRAM else "default"],
        outputs=[O("MODEL", "MODEL")],
    )
    MOE = variant in ("moe", "early_filter")
    EF = variant == "early_filter"
    if MOE:
        g.add(
            4,
            "ICEditMoELoRALoader",
            [400, 60],
            [320, 130],
            ["ICEdit-MoE-LoRA/pytorch_lora_weights.safetensors", 1.0, 0],
            ours=True,
            inputs=[I("model", "MODEL")],
            outputs=[O("MODEL", "MODEL"), O("report", "STRING")],
        )
        g.add(16, "PreviewAny", [760, 420], [300, 160], [], title="MoE-LoRA report", inputs=[I("source", "*")])
    else:
        g.add(
            4,
            "LoraLoaderModelOnly",
            [400, 60],
            [320, 90],
            ["ICEdit-normal-lora/pytorch_lora_weights.safetensors", 1.0],
            title="ICEdit normal LoRA",
            inputs=[I("model", "MODEL")],
            outputs=[O("MODEL", "MODEL")],
        )
    g.add(
        5,
        "ICEditModelSamplingFlux",
        [760, 60],
        [300, 110],
        [1.15, 0.5],
        ours=True,
        inputs=[I("model", "MODEL"), I("layout", "ICEDIT_LAYOUT")],
        outputs=[O("MODEL", "MODEL")],
    )
    g.add(
        6,
        "DualCLIPLoader",
        [40, 200],
        [320, 130],
        ["clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default"],
        outputs=[O("CLIP", "CLIP")],
    )
    g.add(
        7,
        "ICEditPromptEncode",
        [400, 200],
        [340, 200],
        ["make the sky a warm sunset", "released", _released_template(), 50.0],
        ours=True,
        inputs=[I("clip", "CLIP")],
        outputs=[
            O("positive", "CONDITIONING"),
            O("negative", "CONDITIONING"),
            O("prompt", "STRING"),
            O("instruction", "STRING"),
        ],
    )
    g.add(8, "VAELoader", [40, 800], [320, 60], ["ae.safetensors"], outputs=[O("VAE", "VAE")])
    g.add(
        9,
        "ICEditFillConditioning",
        [780, 260],
        [300, 140],
        [],
        ours=True,
        inputs=[
            I("positive", "CONDITIONING"),
            I("negative", "CONDITIONING"),
            I("vae", "VAE"),
            I("diptych", "IMAGE"),
            I("mask", "MASK"),
        ],
        outputs=[O("positive", "CONDITIONING"), O("negative", "CONDITIONING"), O("latent", "LATENT")],
    )
    if EF:
        g.add(
            10,
            "ICEditEarlyFilterSampler",
            [1120, 60],
            [340, 420],
            [42, "fixed", 6, 10, 28, 1.0, "euler", "simple", "resume", "pairwise", 0],
            ours=True,
            inputs=[
                I("model", "MODEL"),
                I("positive", "CONDITIONING"),
                I("negative", "CONDITIONING"),
                I("latent", "LATENT"),
                I("vae", "VAE"),
                I("judge", "ICEDIT_JUDGE"),
                I("layout", "ICEDIT_LAYOUT"),
                I("instruction", "STRING"),
            ],
            outputs=[O("latent", "LATENT"), O("previews", "IMAGE"), O("winner_seed", "INT"), O("report", "STRING")],
        )
        g.add(
            17,
            "ICEditVLMJudgeLocal",
            [760, 600],
            [320, 110],
            ["Qwen2.5-VL-7B-Instruct", "auto", 256],
            ours=True,
            outputs=[O("judge", "ICEDIT_JUDGE")],
        )
        g.add(
            18,
            "PreviewImage",
            [1120, 520],
            [420, 300],
            [],
            title="Candidates the judge saw",
            inputs=[I("images", "IMAGE")],
        )
        g.add(19, "PreviewAny", [1560, 520], [360, 260], [], title="Early Filter report", inputs=[I("source", "*")])
    else:
        g.add(
            10,
            "KSampler",
            [1120, 60],
            [320, 270],
            [42, "fixed", 28, 1.0, "euler", "simple", 1.0],
            inputs=[
                I("model", "MODEL"),
                I("positive", "CONDITIONING"),
                I("negative", "CONDITIONING"),
                I("latent_image", "LATENT"),
            ],
            outputs=[O("LATENT", "LATENT")],
        )
    g.add(
        11,
        "VAEDecode",
        [1480, 60],
        [220, 50],
        [],
        inputs=[I("samples", "LATENT"), I("vae", "VAE")],
        outputs=[O("IMAGE", "IMAGE")],
    )
    g.add(
        12,
        "ICEditCrop",
        [1480, 160],
        [240, 80],
        [],
        ours=True,
        inputs=[I("image", "IMAGE"), I("layout", "ICEDIT_LAYOUT")],
        outputs=[O("edited", "IMAGE"), O("comparison", "IMAGE")],
    )
    if CN:
        g.add(
            20,
            "ControlNetLoader",
            [400, 600],
            [320, 60],
            ["flux-canny-controlnet-v3.safetensors"],
            outputs=[O("CONTROL_NET", "CONTROL_NET")],
        )
        g.add(
            21,
            "Canny",
            [400, 700],
            [300, 90],
            [0.4, 0.8],
            title="Canny of the source",
            inputs=[I("image", "IMAGE")],
            outputs=[O("IMAGE", "IMAGE")],
        )
        g.add(
            22,
            "ICEditApplyLayout",
            [760, 700],
            [300, 100],
            ["same as left"],
            ours=True,
            inputs=[I("layout", "ICEDIT_LAYOUT"), I("image", "IMAGE"), I("mask", "MASK")],
            outputs=[O("image", "IMAGE"), O("mask", "MASK")],
        )
        g.add(
            23,
            "ControlNetApplyAdvanced",
            [1120, 420],
            [320, 190],
            [0.6, 0.0, 0.5],
            inputs=[
                I("positive", "CONDITIONING"),
                I("negative", "CONDITIONING"),
                I("control_net", "CONTROL_NET"),
                I("image", "IMAGE"),
                I("vae", "VAE"),
            ],
            outputs=[O("positive", "CONDITIONING"), O("negative", "CONDITIONING")],
        )
    if UP:
        g.add(
            20,
            "UpscaleModelLoader",
            [1480, 300],
            [300, 60],
            ["RealESRGAN_x4plus.pth"],
            outputs=[O("UPSCALE_MODEL", "UPSCALE_MODEL")],
        )
        g.add(
            21,
            "ImageUpscaleWithModel",
            [1480, 400],
            [240, 50],
            [],
            inputs=[I("upscale_model", "UPSCALE_MODEL"), I("image", "IMAGE")],
            outputs=[O("IMAGE", "IMAGE")],
        )
    g.add(
        13, "SaveImage", [1760, 60], [360, 400], ["ICEdit/edited"], title="Save edited", inputs=[I("images", "IMAGE")]
    )
    g.add(
        14,
        "SaveImage",
        [1760, 500],
        [520, 320],
        ["ICEdit/comparison"],
        title="Save before | after",
        inputs=[I("images", "IMAGE")],
    )
    if EF:
        title = (
            "## ICEdit — MoE-LoRA + Early Filter\n\n"
            "Six seeds run 10 of 28 steps as one batch; the local vision-language judge compares their previews "
            "pairwise (as in the paper) and only the winner finishes, continuing where it stopped. Previews and "
            "the judge's reasons appear below.\n\n"
        )
    elif MOE:
        title = (
            "## ICEdit — MoE-LoRA edit\n\n"
            "The ICEdit MoE-LoRA Loader merges the plain LoRA part and routes every token through its expert "
            "(4 experts, top-1) while sampling.\n\n"
        )
    elif CN:
        title = (
            "## ICEdit — edit guided by a ControlNet\n\n"
            "A Canny map of the source is laid out with the diptych's geometry (ICEdit Apply Layout) and guides "
            "the first half of sampling through a Flux ControlNet, so the edit keeps the source's structure. "
            "Swap Canny for any preprocessor and the ControlNet to match.\n\n"
        )
    elif UP:
        title = (
            "## ICEdit — edit, then upscale\n\n"
            "ICEdit edits at panel width 512; an upscale model brings the edit back up (4x with Real-ESRGAN).\n\n"
        )
    elif LOWVRAM:
        title = (
            "## ICEdit — low VRAM\n\n"
            "The basic edit with the FLUX.1 Fill weights loaded as fp8 (e4m3fn): about half the memory of bf16; "
            "ComfyUI offloads what still does not fit. Quality is close to bf16.\n\n"
        )
    else:
        title = "## ICEdit — basic edit (normal LoRA)\n\n"
    lora_line = (
        "- `loras/ICEdit-MoE-LoRA/pytorch_lora_weights.safetensors` — sanaka87/ICEdit-MoE-LoRA\n"
        if MOE
        else "- `loras/ICEdit-normal-lora/pytorch_lora_weights.safetensors` — RiverZ/normal-lora\n"
    )
    vlm_line = (
        "- `vlm/Qwen2.5-VL-7B-Instruct/` — the whole Hugging Face folder Qwen/Qwen2.5-VL-7B-Instruct (the paper "
        "judged with the 72B; any image-text-to-text model folder works)\n"
        if EF
        else ""
    )
    extra_line = (
        "- `controlnet/flux-canny-controlnet-v3.safetensors` — XLabs-AI/flux-controlnet-canny-v3\n"
        if CN
        else "- `upscale_models/RealESRGAN_x4plus.pth` — xinntao/Real-ESRGAN releases\n"
        if UP
        else ""
    )
    note = (
        title + "Write the edit in **ICEdit Prompt Encode**, load an image, queue.\n\n"
        "Model files (ComfyUI/models/...):\n"
        "- `diffusion_models/flux1-fill-dev.safetensors` — black-forest-labs/FLUX.1-Fill-dev\n"
        "- `text_encoders/clip_l.safetensors`, `text_encoders/t5xxl_fp16.safetensors` — comfyanonymous/flux_text_encoders\n"
        "- `vae/ae.safetensors` — black-forest-labs/FLUX.1-Fill-dev (or FLUX.1-dev)\n"
        + lora_line
        + vlm_line
        + extra_line
        + "\nICEdit works at panel width 512 (a 1024-wide diptych); guidance 50, 28 steps, euler/simple, cfg 1. "
        "If an edit fails, try another seed."
    )
    g.add(15, "MarkdownNote", [40, 900], [520, 300], [note], title="Read me")
    g.link(1, 0, 2, "image")
    g.link(3, 0, 4, "model")
    g.link(4, 0, 5, "model")
    g.link(2, 2, 5, "layout")
    g.link(6, 0, 7, "clip")
    g.link(7, 0, 9, "positive")
    g.link(7, 1, 9, "negative")
    g.link(8, 0, 9, "vae")
    g.link(2, 0, 9, "diptych")
    g.link(2, 1, 9, "mask")
    g.link(5, 0, 10, "model")
    if CN:
        g.link(1, 0, 21, "image")
        g.link(2, 2, 22, "layout")
        g.link(21, 0, 22, "image")
        g.link(9, 0, 23, "positive")
        g.link(9, 1, 23, "negative")
        g.link(20, 0, 23, "control_net")
        g.link(22, 0, 23, "image")
        g.link(8, 0, 23, "vae")
        g.link(23, 0, 10, "positive")
        g.link(23, 1, 10, "negative")
    else:
        g.link(9, 0, 10, "positive")
        g.link(9, 1, 10, "negative")
    if EF:
        g.link(9, 2, 10, "latent")
        g.link(8, 0, 10, "vae")
        g.link(17, 0, 10, "judge")
        g.link(2, 2, 10, "layout")
        g.link(7, 3, 10, "instruction")
        g.link(10, 1, 18, "images")
        g.link(10, 3, 19, "source")
    else:
        g.link(9, 2, 10, "latent_image")
    g.link(10, 0, 11, "samples")
    g.link(8, 0, 11, "vae")
    g.link(11, 0, 12, "image")
    g.link(2, 2, 12, "layout")
    if UP:
        g.link(20, 0, 21, "upscale_model")
        g.link(12, 0, 21, "image")
        g.link(21, 0, 13, "images")
    else:
        g.link(12, 0, 13, "images")
    g.link(12, 1, 14, "images")
    if MOE:
        g.link(4, 1, 16, "source")
    wf = {
        "id": "6b0c7f2e-1ced-4c1e-9b61-1ced1700000"
        + str(["basic", "moe", "early_filter", "controlnet", "upscale", "lowvram"].index(VARIANT) + 1),
        "revision": 0,
        "last_node_id": max(n["id"] for n in g.nodes),
        "last_link_id": len(g.links),
        "nodes": g.nodes,
        "links": g.links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}},
        "version": 0.4,
    }
    POS = {
        1: (20, 40),
        3: (20, 420),
        6: (20, 540),
        8: (20, 720),
        15: (20, 820),
        2: (380, 40),
        4: (380, 200),
        7: (380, 360),
        17: (760, 420),
        20: (760, 420),
        21: (760, 540),
        22: (760, 680),
        5: (760, 40),
        9: (760, 210),
        10: (1120, 40),
        23: (1120, 520),
        16: (760, 420),
        11: (1500, 40),
        12: (1500, 140),
        18: (1120, 520),
        19: (1500, 520),
        13: (1800, 40),
        14: (1800, 440),
    }
    if UP:
        POS[20], POS[21] = (1500, 280), (1500, 390)
    if MOE and not EF:
        POS[16] = (380, 700)
    for node in g.nodes:
        node["pos"] = list(POS[node["id"]])
    wf["extra"]["ds"] = {"scale": 0.72, "offset": [10, 10]}
    return wf


def build_multiturn() -> dict:
    """Loaders -> ICEdit Multi-Turn Edit -> the final image and every turn."""
    g = Graph()
    g.add(1, "LoadImage", [20, 40], [320, 360], ["icedit_example.png", "image"], title="Source image",
          outputs=[O("IMAGE", "IMAGE"), O("MASK", "MASK")])
    g.add(3, "UNETLoader", [20, 440], [320, 90], ["flux1-fill-dev.safetensors", "default"], outputs=[O("MODEL", "MODEL")])
    g.add(4, "LoraLoaderModelOnly", [380, 440], [340, 90], ["ICEdit-normal-lora/pytorch_lora_weights.safetensors", 1.0],
          title="ICEdit normal LoRA", inputs=[I("model", "MODEL")], outputs=[O("MODEL", "MODEL")])
    g.add(6, "DualCLIPLoader", [20, 570], [320, 130], ["clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default"],
          outputs=[O("CLIP", "CLIP")])
    g.add(8, "VAELoader", [20, 740], [320, 60], ["ae.safetensors"], outputs=[O("VAE", "VAE")])
    g.add(30, "ICEditMultiTurn", [760, 40], [380, 420],
          ["make the sky a warm sunset\nadd a red kite in the sky\nmake it look like a watercolor painting", 42,
           "fixed", 28, 512, 50.0, "euler", "simple"], ours=True,
          inputs=[I("model", "MODEL"), I("clip", "CLIP"), I("vae", "VAE"), I("image", "IMAGE")],
          outputs=[O("final", "IMAGE"), O("turns", "IMAGE"), O("log", "STRING")])
    g.add(13, "SaveImage", [1180, 40], [360, 400], ["ICEdit/edited"], title="Save final", inputs=[I("images", "IMAGE")])
    g.add(31, "SaveImage", [1180, 480], [640, 320], ["ICEdit/turns"], title="Save every turn",
          inputs=[I("images", "IMAGE")])
    g.add(32, "PreviewAny", [760, 500], [380, 160], [], title="Seeds per turn", inputs=[I("source", "*")])
    note = ("## ICEdit — multi-turn editing\n\nOne instruction per line in **ICEdit Multi-Turn Edit**; each turn "
            "edits the previous result at the source's size, turn i with seed + i. Every turn is saved.\n\n"
            "Model files (ComfyUI/models/...):\n"
            "- `diffusion_models/flux1-fill-dev.safetensors` — black-forest-labs/FLUX.1-Fill-dev\n"
            "- `text_encoders/clip_l.safetensors`, `text_encoders/t5xxl_fp16.safetensors` — comfyanonymous/flux_text_encoders\n"
            "- `vae/ae.safetensors` — black-forest-labs/FLUX.1-Fill-dev (or FLUX.1-dev)\n"
            "- `loras/ICEdit-normal-lora/pytorch_lora_weights.safetensors` — RiverZ/normal-lora\n")
    g.add(15, "MarkdownNote", [20, 840], [520, 260], [note], title="Read me")
    g.link(3, 0, 4, "model")
    g.link(4, 0, 30, "model")
    g.link(6, 0, 30, "clip")
    g.link(8, 0, 30, "vae")
    g.link(1, 0, 30, "image")
    g.link(30, 0, 13, "images")
    g.link(30, 1, 31, "images")
    g.link(30, 2, 32, "source")
    return {"id": "6b0c7f2e-1ced-4c1e-9b61-1ced17000007", "revision": 0, "last_node_id": 32,
            "last_link_id": len(g.links), "nodes": g.nodes, "links": g.links, "groups": [], "config": {},
            "extra": {"ds": {"scale": 0.72, "offset": [10, 10]}}, "version": 0.4}


def main(argv=None) -> None:
    for variant in (argv or sys.argv[1:]) or VARIANTS:
        path = os.path.join(ROOT, "workflows", f"icedit_{variant}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(build(variant), handle, indent=1)
            handle.write("\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
