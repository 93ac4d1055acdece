"""Editors: the models that do an edit, and what the pack's tools (Early Filter, judges, checked turns, region
stitching) need to know of each - which model and conditioning it expects, and how its decoded output maps back
to the source's frame and size.

- ICEdit (FLUX.1 Fill + the ICEdit LoRA): the source is laid out as a diptych; the edit is the right panel
  (icedit_core.diptych, its DiptychLayout).
- FLUX.1 Kontext [dev] and Qwen-Image-Edit(-2509): the editor sees the whole source at its own working size and
  returns the whole edited image at that size (a WholeImageFrame here), scaled back to the source's size.

How a source and an instruction become the sampler's inputs is ComfyUI's business (its own nodes' functions, called
from nodes/edit_path.py); this module holds only the geometry and the checks, and never imports ComfyUI.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from . import diptych as dip

ICEDIT, FLUX_KONTEXT, QWEN_IMAGE_EDIT = "icedit", "flux_kontext", "qwen_image_edit"


@dataclass(frozen=True)
class Editor:
    name: str
    display: str
    model: str  # the model family the editor samples with, as the error messages name it
    conditioning: str  # what its conditioning carries: "fill" (masked diptych channels) or "reference" latents
    guidance: float | None  # Flux's embedded guidance (None: the model has none, a real cfg instead)
    cfg: float


EDITORS = {
    ICEDIT: Editor(ICEDIT, "ICEdit (FLUX.1 Fill)", "FLUX.1 Fill", "fill", 50.0, 1.0),
    FLUX_KONTEXT: Editor(FLUX_KONTEXT, "FLUX.1 Kontext [dev]", "FLUX.1 (Kontext [dev])", "reference", 2.5, 1.0),
    # ComfyUI's Qwen-Image-Edit-2509 template: 20 steps, cfg 2.5 with a negative prompt, AuraFlow shift 3.
    QWEN_IMAGE_EDIT: Editor(QWEN_IMAGE_EDIT, "Qwen-Image-Edit(-2509)", "Qwen-Image (Edit)", "reference", None, 2.5),
}
# ComfyUI's supported-model class of each editor's diffusion model (FLUX.1 Kontext [dev] loads as its plain Flux).
MODEL_CLASSES = {ICEDIT: ("FluxInpaint",), FLUX_KONTEXT: ("Flux",), QWEN_IMAGE_EDIT: ("QwenImage",)}


def editor(name: str) -> Editor:
    if name not in EDITORS:
        raise ValueError(f"unknown editor {name!r}; the pack knows {', '.join(EDITORS)}")
    return EDITORS[name]


@dataclass(frozen=True, eq=False)
class WholeImageFrame:
    """How a whole-image editor's working image relates to the source: the editor sampled the source scaled to
    working_width x working_height; its decoded output is the whole edit at that size."""

    editor: str
    source_width: int
    source_height: int
    working_width: int
    working_height: int
    sources: torch.Tensor = field(repr=False)  # [B, H, W, 3] RGB at the source's size: the "before"

    @property
    def batch_size(self) -> int:
        return int(self.sources.shape[0])

    def describe(self) -> str:
        return (f"{editor(self.editor).display}: {self.batch_size} source(s) of {self.source_width}x"
                f"{self.source_height}, edited at {self.working_width}x{self.working_height}")


Frame = dip.DiptychLayout | WholeImageFrame


def whole_image_frame(editor_name: str, sources: torch.Tensor, working_width: int, working_height: int
                      ) -> WholeImageFrame:
    """The frame of `sources` [B, H, W, C] edited at working_width x working_height (the image the editor encodes)."""
    editor(editor_name)
    if working_width < 1 or working_height < 1:
        raise ValueError(f"the working size {working_width}x{working_height} has no pixels")
    rgb = dip.to_rgb(sources).float().cpu()  # the input itself where it already is RGB float on the CPU
    return WholeImageFrame(editor_name, int(rgb.shape[2]), int(rgb.shape[1]), int(working_width),
                           int(working_height), rgb)


def editor_of(frame: Frame) -> str:
    return ICEDIT if isinstance(frame, dip.DiptychLayout) else frame.editor


def require_diptych(frame: Frame, what: str) -> dip.DiptychLayout:
    """The layout as ICEdit's diptych, or a one-line error: `what` only works on a diptych."""
    if not isinstance(frame, dip.DiptychLayout):
        raise ValueError(f"{what} works on ICEdit's diptych, but this layout is {frame.describe()}; leave it out "
                         f"of the {editor(frame.editor).display} graph")
    return frame


def check_decoded(decoded: torch.Tensor, frame: WholeImageFrame, what: str) -> None:
    if decoded.ndim != 4 or (decoded.shape[2], decoded.shape[1]) != (frame.working_width, frame.working_height):
        raise ValueError(f"{what} has shape {tuple(decoded.shape)}, but this frame's editor worked at "
                         f"{frame.working_width}x{frame.working_height} ({frame.describe()}): the image and the "
                         "layout come from different sources")
    if decoded.shape[0] % frame.batch_size:
        raise ValueError(f"{what} has a batch of {decoded.shape[0]}, but the frame holds {frame.batch_size} "
                         "sources; the batch must be a multiple of the number of sources.")


def map_back(decoded: torch.Tensor, frame: Frame) -> tuple[torch.Tensor, torch.Tensor]:
    """A decoded output [N, h, w, C] -> (the edit at the source's size [N, H, W, 3], before | after comparison),
    for any editor: ICEdit's right panel, or a whole-image editor's output scaled back."""
    if isinstance(frame, dip.DiptychLayout):
        return dip.crop_edit(decoded, frame)
    check_decoded(decoded, frame, "the decoded image")
    rgb = dip.to_rgb(decoded).float().cpu()
    edited = dip.resize_images(rgb, frame.source_width, frame.source_height)
    return edited, dip.before_after(frame.sources, edited, lambda width, height: dip.resize_images(rgb, width, height))


def judge_size(frame: WholeImageFrame) -> tuple[int, int]:
    """What a judge is shown of a whole-image edit: the source's frame (its aspect), at no more pixels than the
    editor worked at - never upscaled, so a 12-megapixel source costs the judge no more than the edit did."""
    scale = min(1.0, (frame.working_width * frame.working_height / (frame.source_width * frame.source_height)) ** 0.5)
    return max(1, round(frame.source_width * scale)), max(1, round(frame.source_height * scale))


def judge_views(decoded: torch.Tensor, frame: Frame) -> tuple[torch.Tensor, torch.Tensor]:
    """(the first source as the judge sees it [h, w, 3], each decoded candidate in the same frame [N, h, w, 3]).
    ICEdit: the source panel and the right panels, at panel size. Whole-image editors: both scaled to
    judge_size, the candidates from the editor's working size."""
    if isinstance(frame, dip.DiptychLayout):
        _, candidates = dip.panels(decoded, frame)
        return dip.source_panels(frame)[0], candidates
    check_decoded(decoded, frame, "the decoded candidates")
    width, height = judge_size(frame)
    candidates = dip.resize_images(dip.to_rgb(decoded).float().cpu(), width, height)
    return dip.resize_images(frame.sources[:1], width, height)[0], candidates


def check_conditioning(editor_name: str, carries_fill: bool, carries_reference: bool) -> None:
    """A conditioning that does not fit the editor is refused before sampling: ComfyUI's Flux quietly ignores
    Fill channels on a Kontext model, and gives a Fill model zeros where its channels are missing."""
    wanted = editor(editor_name)
    if wanted.conditioning == "fill" and not carries_fill:
        raise ValueError(f"{wanted.display} needs FLUX.1 Fill conditioning (ICEdit Fill Conditioning), but this "
                         "conditioning has no Fill channels" + (" - it carries reference latents, as a Kontext or "
                                                                "Qwen-Image-Edit encode gives" if carries_reference
                                                                else ""))
    if wanted.conditioning == "reference" and carries_fill:
        raise ValueError(f"{wanted.display} reads reference latents, but this conditioning carries FLUX.1 Fill "
                         "channels (ICEdit Fill Conditioning): use the editor's own encode node")
    if wanted.conditioning == "reference" and not carries_reference:
        raise ValueError(f"{wanted.display} edits from reference latents, but this conditioning has none: use the "
                         "editor's own encode node (or ReferenceLatent)")


def check_text_width(editor_name: str, conditioning_width: int, model_text_width: int) -> None:
    """The text conditioning is as wide as the model reads: another editor's text encoder is refused (ComfyUI
    fails deep inside the model's first layer with a matrix-shape error)."""
    if conditioning_width != model_text_width:
        raise ValueError(f"the text conditioning is {conditioning_width} wide, but this {editor(editor_name).display} "
                         f"model reads {model_text_width}: it comes from another model's text encoder (e.g. "
                         "Qwen2.5-VL with a Flux model, or Flux's T5 with Qwen-Image) - load the editor's own")


def check_model(editor_name: str, model_family: str) -> None:
    """`model_family`: ComfyUI's supported-model class name of the loaded model (FluxInpaint, Flux, QwenImage...)."""
    wanted = editor(editor_name)
    if model_family not in MODEL_CLASSES[editor_name]:
        raise ValueError(f"{wanted.display} samples with {wanted.model}, but the model is ComfyUI's "
                         f"{model_family}: load the editor's own diffusion model (or pick the editor that matches it)")
