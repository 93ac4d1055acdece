"""The single-edit path as plain functions. ICEdit: diptych → prompt → Fill conditioning → Flux shift → sample →
crop; FLUX.1 Kontext: scale → encode → prompt with the reference latent → sample → scale back; Qwen-Image-Edit:
TextEncodeQwenImageEditPlus for prompt and negative → sample at cfg 2.5 → scale back.

The single-edit nodes are thin wrappers of one step each; the nodes that edit several times (multi-turn) call
`edit_once`, so no node ever calls another node's `execute`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import comfy.utils
import nodes as comfy_nodes
import torch
from comfy_extras.nodes_edit_model import ReferenceLatent
from comfy_extras.nodes_flux import FluxGuidance, FluxKontextImageScale
from comfy_extras.nodes_model_advanced import ModelSamplingFlux
from comfy_extras.nodes_post_processing import ImageScaleToTotalPixels
from comfy_extras.nodes_qwen import TextEncodeQwenImageEditPlus

from ..icedit_core import diptych as dip
from ..icedit_core import editors
from ..icedit_core import prompts
from . import editor_checks, sampler

# FLUX.1 and ICEdit's pipeline read at most 512 T5 tokens; ComfyUI alone would pass any number.
T5_TOKEN_LIMIT = 512
# CLIP-L gives Flux only its pooled vector, which ComfyUI takes from the first 77-token chunk (75 words-tokens).
CLIP_L_POOLED_TOKENS = 75
DEFAULT_MAX_SHIFT, DEFAULT_BASE_SHIFT = 1.15, 0.5


def _real_tokens(batch) -> list:
    """Tokens that carry text: ComfyUI marks start, end and padding with word id 0."""
    return [token for token in batch if token[2] != 0]


@dataclass(frozen=True)
class TokenReport:
    t5_tokens: int | None  # None: the CLIP has no T5 (not a Flux text encoder)
    t5_kept: int | None
    clip_l_tokens: int | None

    @property
    def cut(self) -> bool:
        return self.t5_kept != self.t5_tokens or (self.clip_l_tokens or 0) > CLIP_L_POOLED_TOKENS

    def text(self) -> str:
        if not self.cut:
            counts = [f"{n} {name} tokens" for name, n in (("T5", self.t5_tokens), ("CLIP-L", self.clip_l_tokens))
                      if n is not None]
            return "Prompt: " + ", ".join(counts) + "; nothing cut."
        notes = []
        if self.t5_kept != self.t5_tokens:
            notes.append(f"T5 kept the first {self.t5_kept} of {self.t5_tokens} tokens (FLUX.1 reads at most "
                         f"{T5_TOKEN_LIMIT} with the end token); the rest of the prompt was dropped")
        if (self.clip_l_tokens or 0) > CLIP_L_POOLED_TOKENS:
            notes.append(f"CLIP-L's pooled summary reads the first {CLIP_L_POOLED_TOKENS} of {self.clip_l_tokens} "
                         "tokens")
        return "The prompt is long: " + "; ".join(notes) + ". Shorten the instruction."


def tokenize_for_flux(clip, text: str) -> tuple[dict, TokenReport]:
    """ComfyUI's tokens for `text`, with T5 cut at 512 tokens as FLUX.1 was trained, and a report of what was
    kept, for the user to see (ComfyUI alone only logs a tokenizer warning)."""
    with_ids = clip.tokenize(text, return_word_ids=True)
    t5_tokens = t5_kept = clip_l_tokens = None
    if "t5xxl" in with_ids:
        real = _real_tokens(with_ids["t5xxl"][0])
        t5_tokens = t5_kept = len(real)
        if len(real) > T5_TOKEN_LIMIT - 1:  # room for the end token
            end = next(token for token in with_ids["t5xxl"][0] if token[2] == 0)  # T5 has no start token
            with_ids["t5xxl"] = [real[:T5_TOKEN_LIMIT - 1] + [end]]
            t5_kept = T5_TOKEN_LIMIT - 1
    if "l" in with_ids:
        clip_l_tokens = sum(len(_real_tokens(batch)) for batch in with_ids["l"])
    report = TokenReport(t5_tokens, t5_kept, clip_l_tokens)
    if report.cut:
        logging.warning("ICEdit: %s", report.text())
    tokens = {key: [[token[:2] for token in batch] for batch in batches] for key, batches in with_ids.items()}
    return tokens, report


def encode_prompt(clip, instruction: str, template_text: str, guidance: float):
    """(positive, negative, full prompt text, token report) for one instruction."""
    text = prompts.build_prompt(instruction, template_text)
    tokens, report = tokenize_for_flux(clip, text)
    positive = clip.encode_from_tokens_scheduled(tokens, add_dict={"guidance": guidance})
    (negative,) = comfy_nodes.ConditioningZeroOut().zero_out(positive)
    return positive, negative, text, report


def fill_conditioning(positive, negative, vae, diptych: torch.Tensor, mask: torch.Tensor):
    """Flux Fill conditioning over the whole diptych (no noise mask, so runs split and resume exactly)."""
    dip.check_mask_matches(diptych, mask)
    if diptych.shape[1] % dip.PANEL_MULTIPLE or diptych.shape[2] % dip.PANEL_MULTIPLE:
        raise ValueError(f"the diptych is {diptych.shape[2]}x{diptych.shape[1]}; Flux Fill needs both sides "
                         f"to be multiples of {dip.PANEL_MULTIPLE}. Make it with ICEditDiptych.")
    return comfy_nodes.InpaintModelConditioning().encode(positive, negative, diptych, vae, mask, noise_mask=False)


def shift_for_layout(model, layout: dip.DiptychLayout, max_shift: float, base_shift: float):
    """The model with Flux's timestep shift for this diptych's size (ModelSamplingFlux with its width/height)."""
    (patched,) = ModelSamplingFlux().patch(model, max_shift, base_shift, layout.diptych_width, layout.diptych_height)
    return patched


# -- FLUX.1 Kontext [dev] ------------------------------------------------------------------------------------------
# Flux works on 16-pixel patches (8x VAE, 2x2 patchify): the working size when Kontext's own sizes are off.
FLUX_MULTIPLE = 16


def working_image(image: torch.Tensor, kontext_size: bool) -> torch.Tensor:
    """The image Kontext encodes: ComfyUI's FluxKontextImageScale (the nearest of Kontext's 17 preferred sizes
    around 1 megapixel), or, with kontext_size off, the source at its own size rounded to multiples of 16."""
    rgb = dip.to_rgb(image)
    if kontext_size:
        return FluxKontextImageScale.execute(rgb).result[0]
    width, height = (max(FLUX_MULTIPLE, round(side / FLUX_MULTIPLE) * FLUX_MULTIPLE)
                     for side in (rgb.shape[2], rgb.shape[1]))
    if (width, height) == (rgb.shape[2], rgb.shape[1]):
        return rgb
    return comfy.utils.common_upscale(rgb.movedim(-1, 1), width, height, "lanczos", "center").movedim(1, -1)


def kontext_encode(clip, vae, image: torch.Tensor, instruction: str, guidance: float, kontext_size: bool = True):
    """(positive, negative, latent, frame, token report): ComfyUI's Kontext graph as functions - the source
    scaled (FluxKontextImageScale), encoded (VAEEncode), the prompt encoded as CLIPTextEncode does (T5 cut at
    512 tokens, as for ICEdit), the source latent added as a reference (ReferenceLatent), FluxGuidance, and a
    zeroed negative (ConditioningZeroOut). The latent to sample is the encoded source, as in ComfyUI's template."""
    if not instruction.strip():
        raise ValueError("the instruction is empty: write what to change")
    working = working_image(image, kontext_size)
    (latent,) = comfy_nodes.VAEEncode().encode(vae, working)
    tokens, report = tokenize_for_flux(clip, instruction.strip())
    text = clip.encode_from_tokens_scheduled(tokens)
    (negative,) = comfy_nodes.ConditioningZeroOut().zero_out(text)
    positive = ReferenceLatent.execute(text, latent).result[0]
    positive = FluxGuidance.execute(positive, guidance).result[0]
    frame = editors.whole_image_frame(editors.FLUX_KONTEXT, image, working.shape[2], working.shape[1])
    return positive, negative, latent, frame, report


# -- Qwen-Image-Edit-2509 ------------------------------------------------------------------------------------------
# TextEncodeQwenImageEditPlus scales its reference to this many megapixels; only there is the stock node used whole.
QWEN_REFERENCE_MEGAPIXELS = 1.0


def qwen_image_edit_encode(clip, vae, image: torch.Tensor, instruction: str, negative_prompt: str = "",
                           reference_megapixels: float = QWEN_REFERENCE_MEGAPIXELS):
    """(positive, negative, latent, frame): Qwen-Image-Edit-2509's inputs from ComfyUI's TextEncodeQwenImageEditPlus
    (the source as image1: the vision input at about 384x384 and the reference latent at about 1 megapixel), the
    negative prompt encoded the same way with the same reference (ReferenceLatent). The latent to sample is the
    reference latent (its size is the working size). With reference_megapixels other than 1, the node encodes text
    and vision only and the reference is the source scaled to that size (ImageScaleToTotalPixels, "area" as the node
    scales) through VAEEncode: the smoke tests' small models cannot afford a megapixel on a CPU."""
    if not instruction.strip():
        raise ValueError("the instruction is empty: write what to change")
    rgb = dip.to_rgb(image)

    def with_reference(text: str):  # the stock node's text and vision input, the reference latent attached
        conditioning = TextEncodeQwenImageEditPlus.execute(clip, text, None, image1=rgb).result[0]
        return ReferenceLatent.execute(conditioning, latent).result[0]

    if reference_megapixels == QWEN_REFERENCE_MEGAPIXELS:  # the stock node whole, for the prompt
        positive = TextEncodeQwenImageEditPlus.execute(clip, instruction.strip(), vae, image1=rgb).result[0]
        latent = {"samples": positive[0][1]["reference_latents"][0]}
    else:
        scaled = ImageScaleToTotalPixels.execute(rgb, "area", reference_megapixels).result[0]
        (latent,) = comfy_nodes.VAEEncode().encode(vae, scaled)
        positive = with_reference(instruction.strip())
    # The negative sees the same source: the stock node with its VAE would encode the same reference again.
    negative = with_reference(negative_prompt)
    reference = latent["samples"]
    # The VAE works in 8-pixel cells: the reference latent's size times 8 is the image the model edits.
    frame = editors.whole_image_frame(editors.QWEN_IMAGE_EDIT, image, reference.shape[-1] * 8, reference.shape[-2] * 8)
    return positive, negative, latent, frame



@dataclass(frozen=True)
class EditSettings:
    steps: int = 28
    panel_width: int = dip.DEFAULT_PANEL_WIDTH
    guidance: float = 50.0
    template_text: str = prompts.RELEASED_TEMPLATE
    max_shift: float = DEFAULT_MAX_SHIFT
    base_shift: float = DEFAULT_BASE_SHIFT
    sampler_name: str = "euler"
    scheduler: str = "simple"
    # After ICEdit's own settings (panel width, template, shift: ICEdit only), which the other editors ignore.
    editor: str = editors.ICEDIT
    kontext_size: bool = True  # FLUX.1 Kontext: scale to its preferred sizes (FluxKontextImageScale)
    negative_prompt: str = ""  # Qwen-Image-Edit: it samples at a real cfg
    reference_megapixels: float = QWEN_REFERENCE_MEGAPIXELS  # Qwen-Image-Edit: 1.0 is TextEncodeQwenImageEditPlus


@dataclass
class EditResult:
    edited: torch.Tensor  # [B, H, W, 3] at the source's size
    prompt: str
    tokens: TokenReport
    seed: int  # the seed whose run this is (the Early Filter's winner when one ran)
    early_filter_report: str = ""


@dataclass
class SamplerInputs:
    """What an editor gives the sampler for one source and instruction, and the layout that maps its output back."""
    model: object
    positive: list
    negative: list
    latent: dict
    layout: editors.Frame
    prompt: str
    tokens: TokenReport


def prepare(model, clip, vae, image: torch.Tensor, instruction: str, settings: EditSettings) -> SamplerInputs:
    """The editor's graph up to the sampler: ICEdit's diptych, prompt, Fill conditioning and shift (what the basic
    workflow wires), Kontext's encode (ICEdit Kontext Encode) or Qwen-Image-Edit's (ICEdit Qwen-Image-Edit
    Encode)."""
    if settings.editor == editors.ICEDIT:
        diptych, mask, layout = dip.build_diptych(image, settings.panel_width)
        positive, negative, text, tokens = encode_prompt(clip, instruction, settings.template_text, settings.guidance)
        positive, negative, latent = fill_conditioning(positive, negative, vae, diptych, mask)
        model = shift_for_layout(model, layout, settings.max_shift, settings.base_shift)
    elif settings.editor == editors.FLUX_KONTEXT:
        positive, negative, latent, layout, tokens = kontext_encode(clip, vae, image, instruction, settings.guidance,
                                                                    settings.kontext_size)
        text = instruction.strip()
    elif settings.editor == editors.QWEN_IMAGE_EDIT:  # the model comes shifted (ModelSamplingAuraFlow), as wired
        positive, negative, latent, layout = qwen_image_edit_encode(clip, vae, image, instruction,
                                                                    settings.negative_prompt,
                                                                    settings.reference_megapixels)
        text, tokens = instruction.strip(), TokenReport(None, None, None)  # Qwen's tokenizer cuts nothing
    else:
        editors.editor(settings.editor)  # an unknown name: its error lists the editors
        raise ValueError(f"{editors.editor(settings.editor).display} has no edit path in nodes/edit_path.py")
    editor_checks.check_inputs(layout, model, positive)
    return SamplerInputs(model, positive, negative, latent, layout, text, tokens)


def edit_once(model, clip, vae, image: torch.Tensor, instruction: str, seed: int, settings: EditSettings,
              early_filter: tuple | None = None) -> EditResult:
    """One complete edit of `image` by the settings' editor (what its basic workflow's graph does), sampled at the
    editor's cfg, denoise 1: by KSampler, or with `early_filter` = (judge, sampler.EarlyFilterSettings) by the Early
    Filter over the candidates seed, seed + 1, ... (what the Early Filter workflow's graph does)."""
    inputs = prepare(model, clip, vae, image, instruction, settings)
    cfg = editors.editor(settings.editor).cfg
    if early_filter is None:
        (sampled,) = comfy_nodes.common_ksampler(inputs.model, seed, settings.steps, cfg, settings.sampler_name,
                                                 settings.scheduler, inputs.positive, inputs.negative, inputs.latent,
                                                 denoise=1.0)
        samples, used_seed, report = sampled["samples"], seed, ""
    else:
        judge, filter_settings = early_filter
        run = sampler.early_filter_sample(inputs.model, inputs.positive, inputs.negative, inputs.latent["samples"],
                                          vae, judge, inputs.layout, instruction, seed, settings.steps, cfg,
                                          settings.sampler_name, settings.scheduler, filter_settings)
        samples, used_seed, report = run.samples, run.winner_seed, run.report
    edited, _ = editors.map_back(sampler.decode(vae, samples), inputs.layout)
    return EditResult(edited, inputs.prompt, inputs.tokens, used_seed, report)
