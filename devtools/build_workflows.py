"""Writes the shipped workflows (workflows/icedit_<variant>.json, ComfyUI frontend UI format) from data, so that the
variants stay consistent. Each workflow is a node table and a link list: ICEDIT is the common ICEdit path (the basic
variant), the other ICEdit variants are overlays on it (nodes replaced, inserted, edited or removed; links rerouted
or added), MULTITURN is a graph of its own. Every node's sockets come from ComfyUI's description of its type
(devtools/node_info.py: the pack's V3 schemas, imported with ComfyUI in this process, and a pinned snapshot of the
core nodes' /object_info); the Read me lists the model files the graph's loaders name, from
icedit_core/model_files.py, which also writes README.md's model table.

    python -m comfyui_icedit.devtools.build_workflows [VARIANT ...]   # rewrites the workflows (default: all)
    python -m comfyui_icedit.devtools.build_workflows --readme        # rewrites README.md's model table
    python -m comfyui_icedit.devtools.build_workflows --refresh-core-nodes  # the core snapshot, from a server

tests/pack/test_workflows_built.py checks that the committed files are what this script writes.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys

from ..icedit_core import model_files
from ..icedit_core.prompts import RELEASED_TEMPLATE
from ..runner.paths import PACK_ROOT as ROOT
from . import node_info


def _pack_version() -> str:
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("version"):
                return line.split("=", 1)[1].strip().strip('"')
    raise RuntimeError("no version in pyproject.toml")


PACK = {"cnr_id": "comfyui-icedit", "ver": _pack_version()}


def registry_ids(node_type: str) -> dict:
    """The node's cnr_id and ver, by which ComfyUI-Manager resolves it to this pack or to ComfyUI's core."""
    if node_type in node_info.pack_object_info():
        return PACK
    return {"cnr_id": "comfy-core", "ver": node_info.core_snapshot()["comfyui_version"]}


MODEL_FILES_SECTION = "Model files (ComfyUI/models/...):\n{model_files}"


@dataclasses.dataclass(frozen=True)
class Node:
    id: int
    type: str
    pos: tuple[int, int]
    size: tuple[int, int]
    widgets: tuple = ()
    title: str | None = None


Link = tuple[int, int, int, str]  # (source id, output slot, target id, input name)


@dataclasses.dataclass(frozen=True)
class Workflow:
    nodes: tuple[Node, ...]  # in the file's node order
    links: tuple[Link, ...]  # in link id order
    readme: str  # the MarkdownNote's text: {about} is the variant's heading, {model_files} the graph's model files
    about: str = ""


@dataclasses.dataclass(frozen=True)
class Overlay:
    """What a variant changes in a workflow. Nodes keep their place in the order: a replacement takes the place of
    the node with its id, inserted nodes follow their anchor; removing a node drops its links. A rerouted link is
    replaced, in place, by the links given for the input it fed; added links come last."""

    about: str = ""
    readme: str = ""  # replaces the workflow's Read me text when given
    replace: tuple[Node, ...] = ()
    insert_after: dict[int, tuple[Node, ...]] = dataclasses.field(default_factory=dict)
    edit: dict[int, dict] = dataclasses.field(default_factory=dict)  # node id: {field: new value}
    remove: frozenset[int] = frozenset()
    reroute: dict[tuple[int, str], tuple[Link, ...]] = dataclasses.field(default_factory=dict)  # (target, input)
    links: tuple[Link, ...] = ()


ICEDIT = Workflow(
    nodes=(
        Node(1, "LoadImage", (20, 40), (320, 360), ("icedit_example.png", "image"), "Source image"),
        Node(2, "ICEditDiptych", (380, 40), (300, 100), (512,)),
        Node(3, "UNETLoader", (20, 420), (320, 90), ("flux1-fill-dev.safetensors", "default")),
        Node(4, "LoraLoaderModelOnly", (380, 200), (320, 90),
             ("ICEdit-normal-lora/pytorch_lora_weights.safetensors", 1.0), "ICEdit normal LoRA"),
        Node(5, "ICEditModelSamplingFlux", (760, 40), (300, 110), (1.15, 0.5)),
        Node(6, "DualCLIPLoader", (20, 540), (320, 130),
             ("clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default")),
        Node(7, "ICEditPromptEncode", (380, 360), (340, 200),
             ("make the sky a warm sunset", "released", RELEASED_TEMPLATE, 50.0)),
        Node(8, "VAELoader", (20, 720), (320, 60), ("ae.safetensors",)),
        Node(9, "ICEditFillConditioning", (760, 210), (300, 140)),
        Node(10, "KSampler", (1120, 40), (320, 270), (42, "fixed", 28, 1.0, "euler", "simple", 1.0)),
        Node(11, "VAEDecode", (1500, 40), (220, 50)),
        Node(12, "ICEditCrop", (1500, 140), (240, 80), (True,)),
        Node(13, "ICEditSaveImage", (1800, 40), (360, 400), ("ICEdit/edited",), "Save edited"),
        Node(14, "SaveImage", (1800, 440), (520, 320), ("ICEdit/comparison",), "Save before | after"),
        Node(15, "MarkdownNote", (20, 820), (520, 300), title="Read me"),
    ),
    links=(
        (1, 0, 2, "image"),
        (3, 0, 4, "model"),
        (4, 0, 5, "model"),
        (2, 2, 5, "layout"),
        (6, 0, 7, "clip"),
        (7, 0, 9, "positive"),
        (7, 1, 9, "negative"),
        (8, 0, 9, "vae"),
        (2, 0, 9, "diptych"),
        (2, 1, 9, "mask"),
        (5, 0, 10, "model"),
        (9, 0, 10, "positive"),
        (9, 1, 10, "negative"),
        (9, 2, 10, "latent_image"),
        (10, 0, 11, "samples"),
        (8, 0, 11, "vae"),
        (11, 0, 12, "image"),
        (2, 2, 12, "layout"),
        (12, 0, 13, "images"),
        (12, 1, 14, "images"),
    ),
    readme="{about}Write the edit in **ICEdit Prompt Encode**, load an image, queue.\n\n" + MODEL_FILES_SECTION
    + "\nICEdit works at panel width 512 (a 1024-wide diptych); guidance 50, 28 steps, euler/simple, cfg 1. "
    "If an edit fails, try another seed.",
    about="## ICEdit — basic edit (normal LoRA)\n\n",
)

MOE = Overlay(
    about="## ICEdit — MoE-LoRA edit\n\nThe ICEdit MoE-LoRA Loader merges the plain LoRA part and routes every token "
    "through its expert (4 experts, top-1) while sampling.\n\n",
    replace=(
        Node(4, "ICEditMoELoRALoader", (380, 200), (320, 130),
             ("ICEdit-MoE-LoRA/pytorch_lora_weights.safetensors", 1.0, 0)),
    ),
    insert_after={4: (Node(16, "PreviewAny", (380, 700), (300, 160), title="MoE-LoRA report"),)},
    links=((4, 1, 16, "source"),),
)

EARLY_FILTER = Overlay(  # on MOE
    about="## ICEdit — MoE-LoRA + Early Filter\n\nSix seeds run 10 of 28 steps as one batch; the local "
    "vision-language judge compares their previews pairwise (as in the paper) and only the winner finishes, "
    "continuing where it stopped. Previews and the judge's reasons appear below.\n\n",
    replace=(
        Node(10, "ICEditEarlyFilterSampler", (1120, 40), (340, 420),
             (42, "fixed", 6, 10, 28, 1.0, "euler", "simple", "resume", "pairwise", 0)),
    ),
    insert_after={10: (
        Node(17, "ICEditVLMJudgeLocal", (760, 420), (320, 110), ("Qwen2.5-VL-7B-Instruct", "auto", 256)),
        Node(18, "PreviewImage", (1120, 520), (420, 300), title="Candidates the judge saw"),
        Node(19, "PreviewAny", (1500, 520), (360, 260), title="Early Filter report"),
    )},
    edit={16: {"pos": (760, 420)}},
    reroute={(10, "latent_image"): (
        (9, 2, 10, "latent"),
        (8, 0, 10, "vae"),
        (17, 0, 10, "judge"),
        (2, 2, 10, "layout"),
        (7, 3, 10, "instruction"),
        (10, 1, 18, "images"),
        (10, 3, 19, "source"),
    )},
)

CONTROLNET = Overlay(
    about="## ICEdit — edit guided by a ControlNet\n\nA Canny map of the source is laid out with the diptych's "
    "geometry (ICEdit Apply Layout) and guides the first half of sampling through a Flux ControlNet, so the edit "
    "keeps the source's structure. Swap Canny for any preprocessor and the ControlNet to match.\n\n",
    insert_after={12: (
        Node(20, "ControlNetLoader", (760, 420), (320, 60), ("flux-canny-controlnet-v3.safetensors",)),
        Node(21, "Canny", (760, 540), (300, 90), (0.4, 0.8), "Canny of the source"),
        Node(22, "ICEditApplyLayout", (760, 680), (300, 100), ("same as left",)),
        Node(23, "ControlNetApplyAdvanced", (1120, 520), (320, 190), (0.6, 0.0, 0.5)),
    )},
    reroute={
        (10, "positive"): (
            (1, 0, 21, "image"),
            (2, 2, 22, "layout"),
            (21, 0, 22, "image"),
            (9, 0, 23, "positive"),
            (9, 1, 23, "negative"),
            (20, 0, 23, "control_net"),
            (22, 0, 23, "image"),
            (8, 0, 23, "vae"),
            (23, 0, 10, "positive"),
        ),
        (10, "negative"): ((23, 1, 10, "negative"),),
    },
)

UPSCALE = Overlay(
    about="## ICEdit — edit, then upscale\n\nICEdit edits at panel width 512; an upscale model brings the edit back "
    "up (4x with Real-ESRGAN).\n\n",
    insert_after={12: (
        Node(20, "UpscaleModelLoader", (1500, 280), (300, 60), ("RealESRGAN_x4plus.pth",)),
        Node(21, "ImageUpscaleWithModel", (1500, 390), (240, 50)),
    )},
    reroute={(13, "images"): ((20, 0, 21, "upscale_model"), (12, 0, 21, "image"), (21, 0, 13, "images"))},
)

LOWVRAM = Overlay(
    about="## ICEdit — low VRAM\n\nThe basic edit with the FLUX.1 Fill weights loaded as fp8 (e4m3fn): about half "
    "the memory of bf16; ComfyUI offloads what still does not fit. Quality is close to bf16.\n\n",
    edit={3: {"widgets": ("flux1-fill-dev.safetensors", "fp8_e4m3fn")}},
)

FAST = Overlay(  # on MOE
    about="## ICEdit — fast: MoE-LoRA + Turbo LoRA, 8 steps, EasyCache\n\nThe FLUX.1-Turbo-Alpha LoRA (stock LoRA "
    "loader, after the MoE-LoRA loader) lets the edit finish in 8 steps instead of 28, and ComfyUI's EasyCache skips "
    "steps whose change it can predict. Both trade some detail and edit strength for speed: compare with the "
    "28-step MoE workflow on your own images.\n\n",
    readme="{about}Write the edit in **ICEdit Prompt Encode**, load an image, queue.\n\n" + MODEL_FILES_SECTION
    + "\nGuidance 50, 8 steps, euler/simple, cfg 1. To run all 8 steps, bypass EasyCache (select it, Ctrl+B); its "
    "log line says how many steps it skipped. The Early Filter refuses a model with EasyCache or LazyCache (they "
    "would break its exact resume): use this model path with KSampler only.",
    insert_after={4: (
        Node(24, "LoraLoaderModelOnly", (760, 400), (320, 90), ("FLUX.1-Turbo-Alpha.safetensors", 1.0),
             "Turbo LoRA (8 steps)"),
        Node(25, "EasyCache", (760, 530), (320, 150), (0.2, 0.15, 0.95, False), "EasyCache (Ctrl+B to turn off)"),
    )},
    edit={10: {"widgets": (42, "fixed", 8, 1.0, "euler", "simple", 1.0)}},
    reroute={(5, "model"): ((4, 0, 24, "model"), (24, 0, 25, "model"), (25, 0, 5, "model"))},
)

REGION = Overlay(
    about="## ICEdit — edit a painted area of a large image\n\nPaint the area to edit on **Load Image** (right-click "
    "→ Open in MaskEditor). **ICEdit Region Crop** cuts a window around it, the window is edited at panel width "
    "512, and **ICEdit Region Stitch** blends the edit back into the full-resolution photo, its colours fitted to "
    "the original's around the mask; outside the feathered mask every pixel stays the original's. Nothing painted: "
    "the whole image is edited, and Region Crop says so.\n\n",
    insert_after={
        1: (Node(26, "ICEditRegionCrop", (20, 420), (320, 200), (64, 16, 0, False, 0.0)),),
        12: (Node(27, "ICEditRegionStitch", (1500, 280), (280, 80), ("mean-std",)),),
    },
    edit={3: {"pos": (20, 660)}, 6: {"pos": (20, 780)}, 8: {"pos": (20, 940)}, 15: {"pos": (20, 1040)}},
    reroute={
        (2, "image"): ((1, 0, 26, "image"), (1, 1, 26, "mask"), (26, 0, 2, "image")),
        (13, "images"): ((12, 0, 27, "edited"), (26, 1, 27, "region"), (27, 0, 13, "images")),
    },
)

MULTITURN = Workflow(  # loaders -> ICEdit Multi-Turn Edit -> the final image and every turn
    nodes=(
        Node(1, "LoadImage", (20, 40), (320, 360), ("icedit_example.png", "image"), "Source image"),
        Node(3, "UNETLoader", (20, 440), (320, 90), ("flux1-fill-dev.safetensors", "default")),
        Node(4, "LoraLoaderModelOnly", (380, 440), (340, 90),
             ("ICEdit-normal-lora/pytorch_lora_weights.safetensors", 1.0), "ICEdit normal LoRA"),
        Node(6, "DualCLIPLoader", (20, 570), (320, 130),
             ("clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default")),
        Node(8, "VAELoader", (20, 740), (320, 60), ("ae.safetensors",)),
        Node(30, "ICEditMultiTurn", (760, 40), (380, 420),
             ("make the sky a warm sunset\nadd a red kite in the sky\nmake it look like a watercolor painting", 42,
              "fixed", 28, 512, 50.0, "euler", "simple", "released", RELEASED_TEMPLATE, 1.15, 0.5, 6.0, 3, 1, 10)),
        Node(13, "ICEditSaveImage", (1180, 40), (360, 400), ("ICEdit/edited",), "Save final"),
        Node(31, "ICEditSaveImage", (1180, 480), (640, 320), ("ICEdit/turns",), "Save every turn"),
        Node(32, "PreviewAny", (760, 500), (380, 160), title="Seeds per turn"),
        Node(15, "MarkdownNote", (20, 840), (520, 260), title="Read me"),
    ),
    links=(
        (3, 0, 4, "model"),
        (4, 0, 30, "model"),
        (6, 0, 30, "clip"),
        (8, 0, 30, "vae"),
        (1, 0, 30, "image"),
        (30, 0, 13, "images"),
        (30, 1, 31, "images"),
        (30, 2, 32, "source"),
    ),
    readme="## ICEdit — multi-turn editing\n\nOne instruction per line in **ICEdit Multi-Turn Edit**; each turn edits "
    "the previous result at the source's size, turn i with seed + i. Every turn is saved.\n\n" + MODEL_FILES_SECTION,
)

TEXT_REGION = Overlay(  # on REGION
    about="## ICEdit — edit the thing you name\n\n**ICEdit Text Mask** finds the phrase (\"the sky\") with CLIPSeg "
    "and masks it; **ICEdit Region Crop** cuts a window around the mask, the window is edited, and **ICEdit Region "
    "Stitch** blends the edit back with its colours fitted to the original's. A phrase that matches nothing stops "
    "the run (nothing is edited): lower the threshold or rephrase.\n\n",
    insert_after={1: (Node(28, "ICEditTextMask", (380, 420), (320, 200), ("clipseg-rd64-refined", "the sky", 0.4, 8,
                                                                         True), "Mask from words"),)},
    edit={7: {"pos": (380, 660)}},
    reroute={(26, "mask"): ((1, 0, 28, "image"), (28, 0, 26, "mask"))},
)

COMPOUND = Overlay(  # on MULTITURN
    readme="## ICEdit — a compound instruction, planned and checked\n\nWrite the whole request in **ICEdit Plan "
    "Instructions**; it is split into single edits (by rules here: sentences, ';', 'then', 'and' between two "
    "edits; set method to judge to let the vision-language model plan). The plan feeds **ICEdit Multi-Turn Edit**, "
    "which checks every turn with the judge: a try scoring below min_score (VIEScore SC, 0-10) is tried again "
    "with the next seed, up to 3 tries, and the best is kept. The log lists every try.\n\n" + MODEL_FILES_SECTION,
    insert_after={8: (
        Node(33, "ICEditPlanInstructions", (380, 40), (340, 260),
             ("make the sky a warm sunset, add a red kite in the sky and then make it look like a watercolor "
              "painting", "rules"), "Plan the edits"),
        Node(17, "ICEditVLMJudgeLocal", (380, 620), (340, 110), ("Qwen2.5-VL-7B-Instruct", "auto", 256)),
    )},
    edit={32: {"title": "Turns, tries and scores"}},
    links=((33, 0, 30, "instructions"), (17, 0, 30, "judge")),
)

Feed = tuple[int, int]  # (node id, output slot): what feeds an input


def video_overlay(readme: str, *, editor: int, editor_input: str, model: Feed, positive: Feed, layout: Feed,
                  latent: Feed, steps: int, edit: dict) -> Overlay:
    """An image workflow turned into a clip's: LoadVideo -> Get Video Components -> the frames into `editor`'s
    `editor_input` as one batch -> ICEdit Video Noise (flow) + BasicGuider + KSamplerSelect + BasicScheduler ->
    ICEdit Video Sampler (in KSampler's place, id 10) -> ... -> Create Video (the source's fps and sound) -> Save
    Video, and ICEdit Video Consistency. `model`, `positive`, `layout`, `latent`: (node, output) of what feeds them;
    the guider's nodes follow `editor`."""
    return Overlay(
        readme=readme,
        replace=(
            Node(1, "LoadVideo", (20, 40), (320, 360), ("icedit_example.mp4", "image"), "Source video"),
            Node(10, "ICEditVideoSampler", (1120, 400), (300, 160), (4,)),
        ),
        insert_after={
            1: (Node(40, "GetVideoComponents", (20, 440), (240, 90)),),
            positive[0]: (
                Node(41, "BasicGuider", (1120, 40), (240, 50)),
                Node(42, "KSamplerSelect", (1120, 130), (240, 60), ("euler",)),
                Node(43, "BasicScheduler", (1120, 230), (240, 110), ("simple", steps, 1.0)),
                Node(44, "ICEditVideoNoise", (760, 400), (320, 180), ("flow", 42, "fixed", "latent pixels", "")),
            ),
            12: (
                Node(46, "CreateVideo", (1800, 40), (260, 80), (30.0,)),
                Node(47, "SaveVideo", (1800, 180), (360, 400), ("ICEdit/edited", "auto", "auto"),
                     "Save edited video"),
                Node(48, "ICEditVideoConsistency", (1500, 300), (260, 120)),
            ),
        },
        remove=frozenset({13, 14}),  # the image savers: Create Video and Save Video take their place
        edit=edit,
        reroute={
            (editor, editor_input): ((1, 0, 40, "video"), (40, 0, editor, editor_input)),
            (10, "model"): ((*model, 41, "model"), (*model, 43, "model")),
            (10, "positive"): ((*positive, 41, "conditioning"),),
            (10, "negative"): (),  # BasicGuider: both editors sample at cfg 1, the zeroed negative is never used
            (10, "latent_image"): ((*layout, 44, "layout"), (44, 0, 10, "noise"), (41, 0, 10, "guider"),
                                   (42, 0, 10, "sampler"), (43, 0, 10, "sigmas"), (*latent, 10, "latent_image")),
        },
        links=((12, 0, 46, "images"), (40, 1, 46, "audio"), (40, 2, 46, "fps"), (46, 0, 47, "video"),
               (40, 0, 48, "source"), (12, 0, 48, "edited")),
    )


VIDEO = video_overlay(  # the ICEdit path over every frame
    readme="## ICEdit — edit a video\n\nEvery frame of the clip is edited as one ICEdit diptych with the same "
    "instruction. **ICEdit Video Noise** (flow) moves the starting noise with the source's motion, so the edit "
    "flickers less than with a new draw per frame; **ICEdit Video Sampler** samples `frames_per_batch` diptychs at "
    "a time; Create Video keeps the source's frame rate and sound. **ICEdit Video Consistency** reports the flicker "
    "beside the source's own.\n\nTime and memory grow with the frame count: each frame costs what one image edit "
    "costs (28 steps at panel width 512; see the README's Speed section). The GPU holds frames_per_batch diptychs "
    "at a time: lower it if memory runs out (the result stays the same up to float rounding). RAM holds every "
    "frame a few times over as float32 (source, diptych, edit: a 720p frame is 11 MB each): for a long clip use "
    "the runner (`scripts/icedit --video clip.mp4 \"make it snowy\"`), which edits it in segments with the noise "
    "carried across them. "
    "Flow noise and the flicker number need opencv-python-headless.\n\n"
    + MODEL_FILES_SECTION,
    editor=2, editor_input="image", model=(5, 0), positive=(9, 0), layout=(2, 2), latent=(9, 2), steps=28,
    edit={3: {"pos": (20, 580)}, 4: {"pos": (380, 580)}, 6: {"pos": (20, 710)}, 7: {"pos": (380, 180)},
          8: {"pos": (20, 880)}, 15: {"pos": (380, 720), "size": (640, 380)}},
)

KONTEXT = Workflow(  # FLUX.1 Kontext [dev]: the whole image, ComfyUI's own Kontext graph in one encode node
    nodes=(
        Node(1, "LoadImage", (20, 40), (320, 360), ("icedit_example.png", "image"), "Source image"),
        Node(3, "UNETLoader", (20, 440), (320, 90), ("flux1-kontext-dev.safetensors", "default")),
        Node(6, "DualCLIPLoader", (20, 570), (320, 130),
             ("clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default")),
        Node(8, "VAELoader", (20, 740), (320, 60), ("ae.safetensors",)),
        Node(50, "ICEditKontextEncode", (380, 40), (340, 260), ("make the sky a warm sunset", 2.5, True)),
        Node(10, "KSampler", (1120, 40), (320, 270), (42, "fixed", 20, 1.0, "euler", "simple", 1.0)),
        Node(11, "VAEDecode", (1500, 40), (220, 50)),
        Node(12, "ICEditCrop", (1500, 140), (240, 80), (True,)),
        Node(13, "ICEditSaveImage", (1800, 40), (360, 400), ("ICEdit/edited",), "Save edited"),
        Node(14, "SaveImage", (1800, 440), (520, 320), ("ICEdit/comparison",), "Save before | after"),
        Node(15, "MarkdownNote", (20, 840), (520, 300), title="Read me"),
    ),
    links=(
        (6, 0, 50, "clip"),
        (8, 0, 50, "vae"),
        (1, 0, 50, "image"),
        (3, 0, 10, "model"),
        (50, 0, 10, "positive"),
        (50, 1, 10, "negative"),
        (50, 2, 10, "latent_image"),
        (10, 0, 11, "samples"),
        (8, 0, 11, "vae"),
        (11, 0, 12, "image"),
        (50, 3, 12, "layout"),
        (12, 0, 13, "images"),
        (12, 1, 14, "images"),
    ),
    readme="{about}Write the edit in **ICEdit Kontext Encode**, load an image, queue. It does what ComfyUI's own "
    "Kontext graph does (FluxKontextImageScale, VAEEncode, ReferenceLatent, FluxGuidance 2.5, a zeroed negative) "
    "and hands the layout on, so **ICEdit Crop** scales the edit back to the source's size.\n\n" + MODEL_FILES_SECTION
    + "\nFLUX.1 Kontext [dev] loads with the same text encoders and VAE as FLUX.1 Fill; 20 steps, euler/simple, "
    "cfg 1, guidance 2.5.",
)

KONTEXT_VIDEO = video_overlay(  # on KONTEXT: FLUX.1 Kontext over every frame
    readme="## FLUX.1 Kontext — edit a video\n\nEvery frame of the clip is edited by FLUX.1 Kontext [dev] with the "
    "same instruction: **ICEdit Kontext Encode** takes the frames as one batch (each frame its own reference "
    "latent), **ICEdit Video Noise** (flow) moves the starting noise with the source's motion, so the edit "
    "flickers less than with a new draw per frame, and **ICEdit Video Sampler** samples `frames_per_batch` frames "
    "at a time, each with its own reference. Create Video keeps the source's frame rate and sound; **ICEdit Video "
    "Consistency** reports the flicker beside the source's own.\n\nEach frame costs one Kontext edit (20 steps, "
    "euler/simple, cfg 1, guidance 2.5). RAM holds every frame a few times over: for a long clip use the runner "
    "(`scripts/icedit --workflow kontext_video --video clip.mp4 \"make it snowy\"`), which edits it in segments "
    "with the noise carried across them. Flow noise and the flicker number need opencv-python-headless.\n\n"
    + MODEL_FILES_SECTION,
    editor=50, editor_input="image", model=(3, 0), positive=(50, 0), layout=(50, 3), latent=(50, 2), steps=20,
    edit={3: {"pos": (20, 580)}, 6: {"pos": (20, 710)}, 8: {"pos": (20, 880)},
          15: {"pos": (380, 720), "size": (640, 380)}},
)

KONTEXT_EARLY_FILTER = Overlay(  # on KONTEXT
    about="## FLUX.1 Kontext — Early Filter\n\nSix seeds run 7 of 20 steps as one batch; the local "
    "vision-language judge compares their previews (the whole candidates, in the source's frame) pairwise and only "
    "the winner finishes, continuing where it stopped: 6 x 7 + 13 = 55 model evaluations instead of 6 x 20 = 120 "
    "for the best of six full runs.\n\n",
    replace=(
        Node(10, "ICEditEarlyFilterSampler", (1120, 40), (340, 420),
             (42, "fixed", 6, 7, 20, 1.0, "euler", "simple", "resume", "pairwise", 0)),
    ),
    insert_after={10: (
        Node(17, "ICEditVLMJudgeLocal", (760, 420), (320, 110), ("Qwen2.5-VL-7B-Instruct", "auto", 256)),
        Node(18, "PreviewImage", (1120, 520), (420, 300), title="Candidates the judge saw"),
        Node(19, "PreviewAny", (1500, 520), (360, 260), title="Early Filter report"),
    )},
    reroute={(10, "latent_image"): (
        (50, 2, 10, "latent"),
        (8, 0, 10, "vae"),
        (17, 0, 10, "judge"),
        (50, 3, 10, "layout"),
        (50, 4, 10, "instruction"),
        (10, 1, 18, "images"),
        (10, 3, 19, "source"),
    )},
)

KONTEXT_REGION = Overlay(  # on KONTEXT
    about="## FLUX.1 Kontext — edit a painted area of a large image\n\nPaint the area to edit on **Load Image** "
    "(right-click → Open in MaskEditor). **ICEdit Region Crop** cuts a window around it, Kontext edits the window "
    "at its own preferred size, **ICEdit Crop** scales the edit back to the window's size, and **ICEdit Region "
    "Stitch** blends it into the full-resolution photo with its colours fitted to the original's; outside the "
    "feathered mask every pixel stays the original's.\n\n",
    insert_after={1: (Node(26, "ICEditRegionCrop", (20, 420), (320, 200), (64, 16, 0, False, 0.0)),),
                  12: (Node(27, "ICEditRegionStitch", (1500, 280), (280, 80), ("mean-std",)),)},
    edit={3: {"pos": (20, 660)}, 6: {"pos": (20, 780)}, 8: {"pos": (20, 940)}, 15: {"pos": (20, 1040)}},
    reroute={
        (50, "image"): ((1, 0, 26, "image"), (1, 1, 26, "mask"), (26, 0, 50, "image")),
        (13, "images"): ((12, 0, 27, "edited"), (26, 1, 27, "region"), (27, 0, 13, "images")),
    },
)

KONTEXT_TURNS = Overlay(  # on MULTITURN + COMPOUND: the same planner and checked turns, each turn edited by Kontext
    readme="## FLUX.1 Kontext — a compound instruction, planned and checked\n\nWrite the whole request in **ICEdit "
    "Plan Instructions**; it is split into single edits, and **ICEdit Multi-Turn Edit** (editor flux_kontext, "
    "guidance 2.5) edits them in turn with FLUX.1 Kontext [dev], each turn exactly what ICEdit Kontext Encode → "
    "KSampler → ICEdit Crop gives for its seed. The judge checks every turn: a try scoring below min_score (VIEScore "
    "SC, 0-10) is tried again with the next seed, up to 3 tries, and the best is kept. The log lists every try."
    "\n\n" + MODEL_FILES_SECTION,
    remove=frozenset({4}),  # no ICEdit LoRA: Kontext edits without one
    replace=(
        Node(3, "UNETLoader", (20, 440), (320, 90), ("flux1-kontext-dev.safetensors", "default")),
        Node(30, "ICEditMultiTurn", (760, 40), (380, 420),
             ("make the sky a warm sunset\nadd a red kite in the sky\nmake it look like a watercolor painting", 42,
              "fixed", 20, 512, 2.5, "euler", "simple", "released", RELEASED_TEMPLATE, 1.15, 0.5, 6.0, 3, 1, 10,
              "flux_kontext", True)),
    ),
    links=((3, 0, 30, "model"),),
)

QWEN_IMAGE_EDIT_EARLY_FILTER = Workflow(  # Qwen-Image-Edit-2509: the stock Plus encode inside ICEdit's encode node
    nodes=(
        Node(1, "LoadImage", (20, 40), (320, 360), ("icedit_example.png", "image"), "Source image"),
        Node(3, "UNETLoader", (20, 440), (320, 90), ("qwen_image_edit_2509_fp8_e4m3fn.safetensors", "default")),
        Node(5, "ModelSamplingAuraFlow", (380, 440), (300, 60), (3.0,)),
        Node(6, "CLIPLoader", (20, 570), (320, 110), ("qwen_2.5_vl_7b_fp8_scaled.safetensors", "qwen_image",
                                                      "default")),
        Node(8, "VAELoader", (20, 720), (320, 60), ("qwen_image_vae.safetensors",)),
        Node(60, "ICEditQwenImageEditEncode", (380, 40), (340, 300), ("make the sky a warm sunset", "", 1.0)),
        Node(10, "ICEditEarlyFilterSampler", (1120, 40), (340, 420),
             (42, "fixed", 6, 7, 20, 2.5, "euler", "simple", "resume", "pairwise", 0)),
        Node(17, "ICEditVLMJudgeLocal", (760, 420), (320, 110), ("Qwen2.5-VL-7B-Instruct", "auto", 256)),
        Node(18, "PreviewImage", (1120, 520), (420, 300), title="Candidates the judge saw"),
        Node(19, "PreviewAny", (1500, 520), (360, 260), title="Early Filter report"),
        Node(11, "VAEDecode", (1500, 40), (220, 50)),
        Node(12, "ICEditCrop", (1500, 140), (240, 80), (True,)),
        Node(13, "ICEditSaveImage", (1800, 40), (360, 400), ("ICEdit/edited",), "Save edited"),
        Node(14, "SaveImage", (1800, 440), (520, 320), ("ICEdit/comparison",), "Save before | after"),
        Node(15, "MarkdownNote", (20, 840), (520, 300), title="Read me"),
    ),
    links=(
        (3, 0, 5, "model"),
        (6, 0, 60, "clip"),
        (8, 0, 60, "vae"),
        (1, 0, 60, "image"),
        (5, 0, 10, "model"),
        (60, 0, 10, "positive"),
        (60, 1, 10, "negative"),
        (60, 2, 10, "latent"),
        (8, 0, 10, "vae"),
        (17, 0, 10, "judge"),
        (60, 3, 10, "layout"),
        (60, 4, 10, "instruction"),
        (10, 1, 18, "images"),
        (10, 3, 19, "source"),
        (10, 0, 11, "samples"),
        (8, 0, 11, "vae"),
        (11, 0, 12, "image"),
        (60, 3, 12, "layout"),
        (12, 0, 13, "images"),
        (12, 1, 14, "images"),
    ),
    readme="## Qwen-Image-Edit-2509 — Early Filter\n\nWrite the edit in **ICEdit Qwen-Image-Edit Encode**: it runs "
    "ComfyUI's TextEncodeQwenImageEditPlus for the prompt and the negative prompt (the source seen by the Qwen2.5-VL "
    "text encoder and added as the reference latent at about 1 megapixel) and hands the layout on. Six seeds run 7 "
    "of 20 steps (cfg 2.5, AuraFlow shift 3) as one batch; the local judge compares the candidates pairwise and only "
    "the winner finishes: 2 x (6 x 7 + 13) = 110 model evaluations instead of 2 x 6 x 20 = 240 for the best of six "
    "(a real cfg evaluates the negative too). **ICEdit Crop** scales the edit back to the source's size.\n\n"
    + MODEL_FILES_SECTION,
)

WORKFLOWS = {  # variant: (workflow, overlays applied in turn); append new ones, as the position is the file's id
    "basic": (ICEDIT, ()),
    "moe": (ICEDIT, (MOE,)),
    "early_filter": (ICEDIT, (MOE, EARLY_FILTER)),
    "controlnet": (ICEDIT, (CONTROLNET,)),
    "upscale": (ICEDIT, (UPSCALE,)),
    "lowvram": (ICEDIT, (LOWVRAM,)),
    "multiturn": (MULTITURN, ()),
    "fast": (ICEDIT, (MOE, FAST)),
    "region": (ICEDIT, (REGION,)),
    "compound": (MULTITURN, (COMPOUND,)),
    "text_region": (ICEDIT, (REGION, TEXT_REGION)),
    "video": (ICEDIT, (VIDEO,)),
    "kontext_early_filter": (KONTEXT, (KONTEXT_EARLY_FILTER,)),
    "kontext_region": (KONTEXT, (KONTEXT_REGION,)),
    "kontext_compound": (MULTITURN, (COMPOUND, KONTEXT_TURNS)),
    "qwen_image_edit_early_filter": (QWEN_IMAGE_EDIT_EARLY_FILTER, ()),
    "kontext_video": (KONTEXT, (KONTEXT_VIDEO,)),
}
VARIANTS = list(WORKFLOWS)


class Graph:
    """Nodes and links in the frontend's UI format (pos, size, flags, order, mode, properties: its schema)."""

    def __init__(self):
        self.nodes, self.links = [], []

    def add(self, node: Node) -> None:
        inputs, outputs = node_info.node_sockets(node.type)
        ui_node = {
            "id": node.id,
            "type": node.type,
            "pos": list(node.pos),
            "size": list(node.size),
            "flags": {},
            "order": len(self.nodes),
            "mode": 0,
            "inputs": [{"name": name, "type": kind, "link": None} for name, kind in inputs],
            "outputs": [{"name": name, "type": kind, "links": []} for name, kind in outputs],
            "properties": {"Node name for S&R": node.type, **registry_ids(node.type)},
            "widgets_values": list(node.widgets),
        }
        if node.title:
            ui_node["title"] = node.title
        self.nodes.append(ui_node)

    def link(self, source_id, source_slot, target_id, input_name):
        source = next(n for n in self.nodes if n["id"] == source_id)
        target = next(n for n in self.nodes if n["id"] == target_id)
        link_id = len(self.links) + 1
        link_type = source["outputs"][source_slot]["type"]
        source["outputs"][source_slot]["links"].append(link_id)
        source["outputs"][source_slot]["slot_index"] = source_slot
        if not any(s["name"] == input_name for s in target["inputs"]):  # a widget fed by a link: the frontend
            target["inputs"].append({"name": input_name, "type": link_type, "widget": {"name": input_name},
                                     "link": None})  # lists it as an input that stands for the widget
        slot = next(i for i, s in enumerate(target["inputs"]) if s["name"] == input_name)
        if target["inputs"][slot]["type"] not in (link_type, "*"):
            raise ValueError(f"{source_id}:{source_slot} ({link_type}) cannot feed {target_id}.{input_name}")
        target["inputs"][slot]["link"] = link_id
        self.links.append([link_id, source_id, source_slot, target_id, slot, link_type])


def apply(workflow: Workflow, overlay: Overlay) -> Workflow:
    """The workflow with the overlay's changes; naming a node or an input the workflow lacks is an error."""
    node_ids = {node.id for node in workflow.nodes}
    named = {node.id for node in overlay.replace} | set(overlay.insert_after) | set(overlay.edit) | overlay.remove
    if named - node_ids:
        raise KeyError(f"the overlay names nodes the workflow lacks: {sorted(named - node_ids)}")
    fed_inputs = {(target, input_name) for _, _, target, input_name in workflow.links}
    if set(overlay.reroute) - fed_inputs:
        raise KeyError(f"the overlay reroutes inputs no link feeds: {sorted(set(overlay.reroute) - fed_inputs)}")
    replacements = {node.id: node for node in overlay.replace}
    nodes = []
    for node in workflow.nodes:
        if node.id not in overlay.remove:
            node = dataclasses.replace(replacements.get(node.id, node), **overlay.edit.get(node.id, {}))
            nodes += [node, *overlay.insert_after.get(node.id, ())]
    links = []
    for link in workflow.links:
        source, _, target, input_name = link
        if not {source, target} & overlay.remove:
            links += overlay.reroute.get((target, input_name), (link,))
    return dataclasses.replace(
        workflow, nodes=tuple(nodes), links=(*links, *overlay.links), about=overlay.about or workflow.about,
        readme=overlay.readme or workflow.readme,
    )


def readme_text(workflow: Workflow) -> str:
    """The Read me, listing the model files the graph's widgets name, so it never misses or invents one."""
    named = {value for node in workflow.nodes for value in node.widgets}
    lines = "".join(f"- {model_files.note_line(model)}\n" for model in model_files.MODEL_FILES
                    if named.intersection(model.names))
    return workflow.readme.format(about=workflow.about, model_files=lines)


# Which node type's input carries each setting a batch run may set: the one place this is said. The builder
# writes, per workflow, the nodes that carry each one into extra.icedit.inputs; the runner reads only that.
SETTABLE_INPUTS = {
    "image": (("LoadImage", "image"),),
    "video": (("LoadVideo", "file"),),
    "instruction": (("ICEditPromptEncode", "instruction"), ("ICEditKontextEncode", "instruction"),
                    ("ICEditQwenImageEditEncode", "instruction"),
                    ("ICEditMultiTurn", "instructions"),
                    ("ICEditPlanInstructions", "instruction")),
    "seed": (("KSampler", "seed"), ("ICEditEarlyFilterSampler", "seed"), ("ICEditMultiTurn", "seed"),
             ("ICEditVideoNoise", "noise_seed")),
    "steps": (("KSampler", "steps"), ("ICEditEarlyFilterSampler", "steps"), ("ICEditMultiTurn", "steps"),
              ("BasicScheduler", "steps")),
    "panel_width": (("ICEditDiptych", "panel_width"), ("ICEditMultiTurn", "panel_width")),
    "candidates": (("ICEditEarlyFilterSampler", "candidates"),),
    "early_steps": (("ICEditEarlyFilterSampler", "early_steps"),),
    "video_noise": (("ICEditVideoNoise", "mode"),),
    "frames_per_batch": (("ICEditVideoSampler", "frames_per_batch"),),
    "video_carry": (("ICEditVideoNoise", "carry_in"),),
}


def settable_inputs(workflow: Workflow) -> dict:
    """{setting: [{"node": id, "input": name}, ...]} for the settings this graph has, in node order. An input a
    link feeds (the plan feeding Multi-Turn's instructions) takes its value from there, so it is not settable."""
    fed = {(target, input_name) for _, _, target, input_name in workflow.links}
    declared = {}
    for setting, carriers in SETTABLE_INPUTS.items():
        targets = [{"node": node.id, "input": input_name} for node in workflow.nodes
                   for node_type, input_name in carriers if node.type == node_type and (node.id, input_name) not in fed]
        if targets:
            declared[setting] = targets
    return declared


def to_ui(workflow: Workflow, workflow_number: int) -> dict:
    graph = Graph()
    for node in workflow.nodes:
        graph.add(dataclasses.replace(node, widgets=(readme_text(workflow),)) if node.type == "MarkdownNote" else node)
    for link in workflow.links:
        graph.link(*link)
    return {
        "id": f"6b0c7f2e-1ced-4c1e-9b61-1ced17{workflow_number:06d}",
        "revision": 0,
        "last_node_id": max(node.id for node in workflow.nodes),
        "last_link_id": len(graph.links),
        "nodes": graph.nodes,
        "links": graph.links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 0.72, "offset": [10, 10]}, "icedit": {"inputs": settable_inputs(workflow)}},
        "version": 0.4,
    }


def assembled(variant: str) -> Workflow:
    """The variant's workflow with its overlays applied."""
    workflow, overlays = WORKFLOWS[variant]
    return functools.reduce(apply, overlays, workflow)


def build(variant: str) -> dict:
    return to_ui(assembled(variant), VARIANTS.index(variant) + 1)


def core_node_types() -> set[str]:
    """The ComfyUI core node types the workflows use: what the pinned /object_info snapshot holds."""
    used = {node.type for variant in VARIANTS for node in assembled(variant).nodes}
    return used - set(node_info.pack_object_info()) - set(node_info.FRONTEND_NODES)


def write_readme_table(path: str = os.path.join(ROOT, "README.md")) -> None:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(model_files.with_readme_table(text, path))
    print(f"wrote the model table of {path}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m comfyui_icedit.devtools.build_workflows",
                                     description="Write the shipped workflows (all, or the variants named).")
    parser.add_argument("variants", nargs="*", metavar="VARIANT", help=f"one of {', '.join(VARIANTS)}")
    parser.add_argument("--readme", action="store_true", help="rewrite README.md's model table instead")
    parser.add_argument("--refresh-core-nodes", action="store_true",
                        help=f"rewrite {os.path.relpath(node_info.SNAPSHOT_PATH, ROOT)} from a ComfyUI server "
                        "started for it, instead")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    unknown = [variant for variant in args.variants if variant not in VARIANTS]
    if unknown:
        parser.error(f"no variant {', '.join(unknown)}; the variants: {', '.join(VARIANTS)}")
    if args.readme:
        write_readme_table()
        return
    if args.refresh_core_nodes:
        node_info.refresh_core_snapshot(core_node_types())
        return
    for variant in args.variants or VARIANTS:
        path = os.path.join(ROOT, "workflows", f"icedit_{variant}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(build(variant), handle, indent=1)
            handle.write("\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
