"""The basic ICEdit path: diptych, in-context prompt, Fill conditioning, Flux shift, crop back."""
from __future__ import annotations

import torch
from comfy_api.latest import io, ui

from ..icedit_core import diptych as dip
from ..icedit_core import editors
from ..icedit_core import prompts
from . import edit_path
from .io_types import Layout
from .validation import ICEditNode

CATEGORY = "ICEdit"


def shift_inputs() -> list:
    return [
        io.Float.Input("max_shift", default=edit_path.DEFAULT_MAX_SHIFT, min=0.0, max=100.0, step=0.01,
                       tooltip="Shift at 4096 image tokens (Flux's default)."),
        io.Float.Input("base_shift", default=edit_path.DEFAULT_BASE_SHIFT, min=0.0, max=100.0, step=0.01,
                       tooltip="Shift at 256 image tokens (Flux's default)."),
    ]


def template_inputs() -> list:
    return [
        io.Combo.Input("template", options=list(prompts.TEMPLATES) + [prompts.CUSTOM], default="released",
                       tooltip="released: the text ICEdit was trained with (recommended). paper: the wording of "
                               "the paper. custom: your own text below."),
        io.String.Input("custom_template", multiline=True, default=prompts.RELEASED_TEMPLATE,
                        tooltip="Used when template is 'custom'. Must contain {instruction}."),
    ]


class ICEditDiptych(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditDiptych",
            display_name="ICEdit Diptych",
            category=CATEGORY,
            description="Lays the source out as ICEdit expects: resized to the panel width, pasted into both "
                        "halves of a side-by-side diptych, with a mask over the right half to regenerate.",
            inputs=[
                io.Image.Input("image", tooltip="The image(s) to edit. Any size and aspect; a batch must share "
                                                "one size."),
                io.Int.Input("panel_width", default=dip.DEFAULT_PANEL_WIDTH, min=dip.PANEL_MULTIPLE, max=4096,
                             step=dip.PANEL_MULTIPLE,
                             tooltip="Width of each half. ICEdit was trained at 512; the height follows the "
                                     "source's aspect, rounded to a multiple of 16."),
            ],
            outputs=[
                io.Image.Output("diptych", display_name="diptych", tooltip="Source | source, side by side (2 x panel width wide)."),
                io.Mask.Output("mask", display_name="mask", tooltip="1 over the right half (to regenerate), 0 over the left."),
                Layout.Output("layout", display_name="layout", tooltip="How the diptych was made; ICEditCrop uses it to cut the "
                                                "edit back to the source's size."),
            ],
        )

    @classmethod
    def execute(cls, image, panel_width) -> io.NodeOutput:
        diptych, mask, layout = dip.build_diptych(image, panel_width)
        return io.NodeOutput(diptych, mask, layout)


class ICEditPromptEncode(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditPromptEncode",
            display_name="ICEdit Prompt Encode",
            category=CATEGORY,
            description="Wraps the instruction in ICEdit's in-context diptych prompt, encodes it with Flux "
                        "guidance, and gives a zeroed negative as the official workflow does.",
            inputs=[
                io.Clip.Input("clip", tooltip="The Flux text encoders (CLIP-L + T5-XXL)."),
                io.String.Input("instruction", multiline=True, default="",
                                placeholder="make the sky a sunset",
                                tooltip="What to change, in plain words. Goes into the template as written. "
                                        "T5 reads at most 512 tokens; a longer prompt is cut and the node "
                                        "says so."),
                *template_inputs(),
                io.Float.Input("guidance", default=50.0, min=0.0, max=100.0, step=0.1,
                               tooltip="Flux embedded guidance. ICEdit uses 50."),
            ],
            outputs=[
                io.Conditioning.Output("positive", display_name="positive", tooltip="The in-context prompt with Flux guidance."),
                io.Conditioning.Output("negative", display_name="negative", tooltip="The positive zeroed out (Flux Fill runs at cfg 1)."),
                io.String.Output("prompt", display_name="prompt", tooltip="The full text that was encoded."),
                io.String.Output("instruction_text", display_name="instruction",
                                 tooltip="The instruction alone, for the Early Filter's judge."),
            ],
        )

    @classmethod
    def execute(cls, clip, instruction, template, custom_template, guidance) -> io.NodeOutput:
        positive, negative, text, tokens = edit_path.encode_prompt(
            clip, instruction, prompts.resolve_template(template, custom_template), guidance)
        # The token counts show on the node itself (web/js/show_text.js), where the user looks, not only in the log.
        return io.NodeOutput(positive, negative, text, instruction.strip(), ui=ui.PreviewText(tokens.text()))


class ICEditFillConditioning(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditFillConditioning",
            display_name="ICEdit Fill Conditioning",
            category=CATEGORY,
            description="FLUX.1 Fill conditioning for the diptych (masked image + mask as extra channels), and "
                        "the starting latent. No noise mask: the whole diptych is sampled, as ICEdit does, so "
                        "a run can be split and resumed exactly.",
            inputs=[
                io.Conditioning.Input("positive", tooltip="From ICEditPromptEncode."),
                io.Conditioning.Input("negative", tooltip="From ICEditPromptEncode."),
                io.Vae.Input("vae", tooltip="The Flux VAE (ae.safetensors)."),
                io.Image.Input("diptych", tooltip="From ICEditDiptych."),
                io.Mask.Input("mask", tooltip="From ICEditDiptych; must match the diptych's size."),
            ],
            outputs=[
                # Output ids must differ from input ids; the sockets still read "positive" / "negative".
                io.Conditioning.Output("fill_positive", display_name="positive",
                                       tooltip="With the masked diptych and mask as Fill channels."),
                io.Conditioning.Output("fill_negative", display_name="negative",
                                       tooltip="With the masked diptych and mask as Fill channels."),
                io.Latent.Output("latent", display_name="latent", tooltip="The encoded diptych, to sample at denoise 1.0."),
            ],
        )

    @classmethod
    def execute(cls, positive, negative, vae, diptych, mask) -> io.NodeOutput:
        return io.NodeOutput(*edit_path.fill_conditioning(positive, negative, vae, diptych, mask))


class ICEditModelSamplingFlux(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditModelSamplingFlux",
            display_name="ICEdit Flux Shift (diptych size)",
            category=CATEGORY,
            description="Sets the Flux timestep shift for the diptych's size, as ModelSamplingFlux does with "
                        "the diptych's width and height. ComfyUI's default assumes a 1024x1024 image; a "
                        "1024x512 diptych has half the tokens.",
            inputs=[
                io.Model.Input("model", tooltip="The FLUX.1 Fill model (after any LoRA loaders)."),
                Layout.Input("layout", tooltip="From ICEditDiptych; gives the diptych's width and height."),
                *shift_inputs(),
            ],
            outputs=[io.Model.Output(tooltip="The model with the shift for this diptych's size.")],
        )

    @classmethod
    def execute(cls, model, layout, max_shift, base_shift) -> io.NodeOutput:
        layout = editors.require_diptych(layout, "ICEdit Flux Shift")
        return io.NodeOutput(edit_path.shift_for_layout(model, layout, max_shift, base_shift))


class ICEditCrop(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditCrop",
            display_name="ICEdit Crop",
            category=CATEGORY,
            description="Cuts the edited right half out of the decoded diptych and resizes it back to the "
                        "source's original size and aspect. Checks first that the diptych's left panel shows the "
                        "layout's source, so a layout from another picture cannot give a wrong 'before'. With a "
                        "Kontext layout (ICEdit Kontext Encode) the whole decoded image is the edit, scaled back "
                        "from Kontext's working size to the source's.",
            inputs=[
                io.Image.Input("image", tooltip="The decoded diptych (VAE Decode of the sampled latent), or an "
                                                "editor's decoded image."),
                Layout.Input("layout", tooltip="From the ICEditDiptych node that made this diptych (or the editor's "
                                               "encode node)."),
                io.Boolean.Input("check_source", default=True,
                                 tooltip="Compare the decoded left panel with a thumbnail of the layout's source "
                                         "and stop when they differ. Leave on; random-weight test models draw "
                                         "noise on the left, so the smoke tests turn it off. (A whole-image "
                                         "editor has no left panel: its image's size is checked instead.)"),
            ],
            outputs=[
                io.Image.Output("edited", display_name="edited", tooltip="The edit, at the source's size."),
                io.Image.Output("comparison", display_name="comparison",
                                tooltip="Before | after, side by side, at the source's size (scaled down past 4 "
                                        "megapixels per side: it is for looking at)."),
            ],
        )

    @classmethod
    def execute(cls, image, layout, check_source=True) -> io.NodeOutput:
        if check_source and isinstance(layout, dip.DiptychLayout):
            dip.check_source_matches(image, layout)
        edited, comparison = editors.map_back(image, layout)
        return io.NodeOutput(edited, comparison)


class ICEditApplyLayout(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditApplyLayout",
            display_name="ICEdit Apply Layout",
            category=CATEGORY,
            description="Lays any image or mask made from the source (a ControlNet map: canny, depth, pose; a "
                        "mask) out with the diptych's geometry, so it lines up with the diptych pixel for pixel.",
            inputs=[
                Layout.Input("layout", tooltip="From ICEditDiptych."),
                io.Combo.Input("right", options=[dip.RIGHT_SAME, dip.RIGHT_BLANK], default=dip.RIGHT_SAME,
                               tooltip="What goes in the right half: the same map again (guides the edit to keep "
                                       "the structure), or black (no guidance there)."),
                io.Image.Input("image", optional=True, tooltip="An image of the source's aspect ratio."),
                io.Mask.Input("mask", optional=True, tooltip="A mask of the source's aspect ratio."),
            ],
            outputs=[
                io.Image.Output("laid_out_image", display_name="image", tooltip="The image as a diptych."),
                io.Mask.Output("laid_out_mask", display_name="mask", tooltip="The mask as a diptych."),
            ],
        )

    @classmethod
    def execute(cls, layout, right, image=None, mask=None) -> io.NodeOutput:
        layout = editors.require_diptych(layout, "ICEdit Apply Layout")
        if image is None and mask is None:
            raise ValueError("connect an image or a mask to lay out")
        laid_image = dip.apply_layout(image, layout, right) if image is not None else \
            torch.zeros((1, layout.diptych_height, layout.diptych_width, 3))
        if mask is not None:
            planes = mask.unsqueeze(-1) if mask.ndim == 3 else mask.reshape(1, *mask.shape[-2:], 1)
            laid_mask = dip.apply_layout(planes, layout, right)[..., 0]
        else:
            laid_mask = torch.zeros((1, layout.diptych_height, layout.diptych_width))
        return io.NodeOutput(laid_image, laid_mask)


NODES = [ICEditDiptych, ICEditPromptEncode, ICEditFillConditioning, ICEditModelSamplingFlux, ICEditCrop,
         ICEditApplyLayout]
