"""Other editors than ICEdit: FLUX.1 Kontext [dev]'s and Qwen-Image-Edit-2509's encode nodes (ComfyUI's own nodes'
functions, in nodes/edit_path.py), giving the layout the pack's tools map their edit back with
(icedit_core.editors)."""
from __future__ import annotations

from comfy_api.latest import io, ui

from ..icedit_core import editors
from . import edit_path
from .io_types import Layout
from .validation import ICEditNode


def layout_and_instruction_outputs(working_size: str) -> list:
    """The outputs every editor's encode node ends with: its layout, and the instruction for a judge."""
    return [
        Layout.Output("layout", display_name="layout",
                      tooltip=f"The source and {working_size}: ICEdit Crop and the Early Filter map the edit back "
                              "with it."),
        io.String.Output("instruction_text", display_name="instruction", tooltip="The instruction alone, for a judge."),
    ]


class ICEditKontextEncode(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditKontextEncode",
            display_name="ICEdit Kontext Encode",
            category="ICEdit/editors",
            description="FLUX.1 Kontext [dev]'s edit inputs, as ComfyUI's own Kontext graph makes them "
                        "(FluxKontextImageScale, VAEEncode, CLIPTextEncode, ReferenceLatent, FluxGuidance, "
                        "ConditioningZeroOut), plus the layout that lets the pack's tools (Early Filter, ICEdit "
                        "Crop, Region Stitch) map the edit back to the source's size.",
            inputs=[
                io.Clip.Input("clip", tooltip="The Flux text encoders (CLIP-L + T5-XXL), as for FLUX.1 Fill."),
                io.Vae.Input("vae", tooltip="The Flux VAE (ae.safetensors)."),
                io.Image.Input("image", tooltip="The source (a batch must share one size)."),
                io.String.Input("instruction", multiline=True, default="", placeholder="make the sky a sunset",
                                tooltip="What to change, in plain words; Kontext reads it as the whole prompt. T5 "
                                        "reads at most 512 tokens; a longer prompt is cut and the node says so."),
                io.Float.Input("guidance", default=editors.EDITORS[editors.FLUX_KONTEXT].guidance, min=0.0,
                               max=100.0, step=0.1, tooltip="Flux embedded guidance; Kontext [dev] uses 2.5."),
                io.Boolean.Input("kontext_size", default=True,
                                 tooltip="Scale the source to the nearest of Kontext's preferred sizes (about 1 "
                                         "megapixel, FluxKontextImageScale), as Kontext was trained. Off: the "
                                         "source's own size rounded to multiples of 16 (the smoke tests' small "
                                         "random models use this)."),
            ],
            outputs=[
                io.Conditioning.Output("positive", display_name="positive",
                                       tooltip="The instruction with the source as reference latent and the guidance."),
                io.Conditioning.Output("negative", display_name="negative",
                                       tooltip="Zeroed out (Kontext [dev] samples at cfg 1)."),
                io.Latent.Output("latent", display_name="latent",
                                 tooltip="The encoded source at the working size, to sample at denoise 1.0."),
                *layout_and_instruction_outputs("Kontext's working size"),
            ],
        )

    @classmethod
    def execute(cls, clip, vae, image, instruction, guidance, kontext_size=True) -> io.NodeOutput:
        positive, negative, latent, frame, tokens = edit_path.kontext_encode(clip, vae, image, instruction, guidance,
                                                                             kontext_size)
        return io.NodeOutput(positive, negative, latent, frame, instruction.strip(),
                             ui=ui.PreviewText(f"{tokens.text()} {frame.describe()}."))


class ICEditQwenImageEditEncode(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditQwenImageEditEncode",
            display_name="ICEdit Qwen-Image-Edit Encode",
            category="ICEdit/editors",
            description="Qwen-Image-Edit-2509's edit inputs, as ComfyUI's TextEncodeQwenImageEditPlus makes them "
                        "(the source as its image1: seen by the Qwen2.5-VL text encoder and added as the reference "
                        "latent), for the prompt and the negative prompt, plus the layout that lets the pack's "
                        "tools (Early Filter, ICEdit Crop, Region Stitch) map the edit back to the source's size. "
                        "Sample with a real cfg (2.5) after ModelSamplingAuraFlow (shift 3).",
            inputs=[
                io.Clip.Input("clip", tooltip="Qwen-Image's text encoder (CLIPLoader, type qwen_image: Qwen2.5-VL "
                                              "7B)."),
                io.Vae.Input("vae", tooltip="The Qwen-Image VAE (qwen_image_vae.safetensors)."),
                io.Image.Input("image", tooltip="The source (a batch must share one size)."),
                io.String.Input("instruction", multiline=True, default="", placeholder="make the sky a sunset",
                                tooltip="What to change, in plain words."),
                io.String.Input("negative_prompt", multiline=True, default="",
                                tooltip="What the edit should not look like; empty is ComfyUI's template default."),
                io.Float.Input("reference_megapixels", default=edit_path.QWEN_REFERENCE_MEGAPIXELS, min=0.01,
                               max=16.0, step=0.01,
                               tooltip="1.0: exactly TextEncodeQwenImageEditPlus (the reference at about 1 "
                                       "megapixel). Other sizes scale the reference there instead (the smoke "
                                       "tests' small random models use 0.01)."),
            ],
            outputs=[
                io.Conditioning.Output("positive", display_name="positive",
                                       tooltip="The instruction, with the source seen and as reference latent."),
                io.Conditioning.Output("negative", display_name="negative",
                                       tooltip="The negative prompt, encoded the same way (Qwen samples at a real "
                                               "cfg)."),
                io.Latent.Output("latent", display_name="latent",
                                 tooltip="The source's reference latent at the working size, to sample at denoise "
                                         "1.0."),
                *layout_and_instruction_outputs("the working size"),
            ],
        )

    @classmethod
    def execute(cls, clip, vae, image, instruction, negative_prompt="",
                reference_megapixels=edit_path.QWEN_REFERENCE_MEGAPIXELS) -> io.NodeOutput:
        positive, negative, latent, frame = edit_path.qwen_image_edit_encode(clip, vae, image, instruction,
                                                                             negative_prompt, reference_megapixels)
        return io.NodeOutput(positive, negative, latent, frame, instruction.strip(),
                             ui=ui.PreviewText(f"{frame.describe()}."))


NODES = [ICEditKontextEncode, ICEditQwenImageEditEncode]
