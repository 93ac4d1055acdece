"""The checks that a model, a conditioning and a layout belong to the same editor (ICEdit, FLUX.1 Kontext,
Qwen-Image-Edit), made before sampling: ComfyUI quietly runs most mismatches, or fails deep inside the model
(icedit_core.editors words the errors)."""
from __future__ import annotations

from ..icedit_core import editors


def model_family(model) -> str:
    """ComfyUI's supported-model class of a loaded MODEL (FluxInpaint, Flux, QwenImage, ...)."""
    return type(model.model.model_config).__name__


def carries(conditioning) -> tuple[bool, bool]:
    """(FLUX.1 Fill channels, reference latents) in a CONDITIONING."""
    fill = any("concat_latent_image" in entry[1] for entry in conditioning)
    reference = any(entry[1].get("reference_latents") for entry in conditioning)
    return fill, reference


def text_width(model) -> int | None:
    """How wide a text conditioning the diffusion model reads: Flux's and Qwen-Image's txt_in (None for others)."""
    layer = getattr(model.model.diffusion_model, "txt_in", None)
    return getattr(layer, "in_features", None)


def check_inputs(frame, model, positive) -> None:
    """The model, the conditioning and the layout are the same editor's, or a one-line error says which is not."""
    name = editors.editor_of(frame)
    editors.check_model(name, model_family(model))
    width = text_width(model)
    if width is not None and positive:
        editors.check_text_width(name, int(positive[0][0].shape[-1]), width)
    editors.check_conditioning(name, *carries(positive))
