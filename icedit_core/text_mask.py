"""Masks from words: CLIPSeg (transformers' CLIPSegForImageSegmentation, e.g. CIDAS/clipseg-rd64-refined) scores
every pixel for a phrase ("the dog", "the sky"); the scores become a mask by a threshold, then optionally grown and
hole-filled (the same operations as the region crop). Several phrases separated by commas are combined (any of
them). CLIPSeg sees the image at 352x352 and its map is scaled back to the image's size, so thin structures come
out coarse.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .images import to_pil
from .model_folder import has_config, has_weights
from .region import fill_holes, grow


def split_phrases(text: str) -> list[str]:
    phrases = [part.strip() for part in (text or "").split(",") if part.strip()]
    if not phrases:
        raise ValueError("no phrase: name what to mask, e.g. 'the dog' (several: 'the dog, the ball')")
    return phrases


def check_threshold(threshold: float) -> None:
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold = {threshold}; it is a probability and must lie strictly between 0 and 1")


class ClipSegMasker:
    """A CLIPSeg model folder (config.json, weights, processor files), loaded once."""

    def __init__(self, folder: str, device="cpu"):
        if not has_config(folder):
            raise ValueError(f"{folder} has no config.json; download the whole CLIPSeg folder (e.g. "
                             "CIDAS/clipseg-rd64-refined) into models/clipseg/")
        if not has_weights(folder):
            raise ValueError(f"{folder} has no weights (*.safetensors or *.bin); download the whole CLIPSeg folder "
                             "into models/clipseg/")
        from transformers import AutoProcessor, CLIPSegForImageSegmentation

        try:
            self.processor = AutoProcessor.from_pretrained(folder)
            self.model = CLIPSegForImageSegmentation.from_pretrained(folder).eval()
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"cannot load the CLIPSeg model in {folder}: {error}") from error
        self.folder, self.device = folder, torch.device(device)

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor, phrases: list[str]) -> torch.Tensor:
        """[B, H, W, C] images -> [B, H, W] probability that each pixel shows any of the phrases."""
        self.model.to(self.device)
        try:
            maps = []
            for image in images:
                inputs = self.processor(text=phrases, images=[to_pil(image)] * len(phrases), padding=True,
                                        return_tensors="pt")
                inputs = {k: v.to(self.device) for k, v in inputs.items()}
                logits = self.model(**inputs).logits.float().cpu().reshape(len(phrases), *inputs["pixel_values"]
                                                                           .shape[-2:])
                size = (int(image.shape[0]), int(image.shape[1]))
                scaled = F.interpolate(logits[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
                maps.append(torch.sigmoid(scaled).amax(dim=0))
            return torch.stack(maps)
        finally:
            self.model.to("cpu")  # between runs the model waits in RAM, not in VRAM


def require_match(mask: torch.Tensor, probabilities: torch.Tensor, phrase: str, threshold: float) -> None:
    """An empty mask is an error, not a result: downstream, Region Crop would take it as "edit the whole image"."""
    if not mask.any():
        raise ValueError(f"nothing in the image matched {phrase!r}: the highest CLIPSeg probability is "
                         f"{float(probabilities.max()):.2f}, below the threshold {threshold}. Lower the threshold "
                         "or describe it differently; nothing was edited.")


def mask_from_probabilities(probabilities: torch.Tensor, threshold: float, grow_pixels: int = 0,
                            fill: bool = False) -> torch.Tensor:
    """[B, H, W] probabilities -> a binary mask: above the threshold, hole-filled, then grown."""
    check_threshold(threshold)
    if grow_pixels < 0:
        raise ValueError(f"grow = {grow_pixels}; it cannot be negative")
    mask = (probabilities > threshold).float()
    if fill:
        mask = fill_holes(mask)
    return grow(mask, grow_pixels) if grow_pixels else mask
