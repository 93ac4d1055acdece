"""The paper's edit metrics.

MagicBrush protocol (against the ground-truth target): L1 (mean absolute difference on [0, 1] after resizing
the output to the target's size), CLIP-I and DINO (cosine similarity of image embeddings), CLIP-T (cosine
similarity of the output's image embedding and the target caption's text embedding).
Emu Edit protocol (no target): CLIP-I and DINO against the source, CLIP-Out against the output caption.
Locality (a source and the mask of the area the edit was meant for, e.g. from ICEdit Text Mask): how much
changed outside the mask against inside it - did the edit stay where it was aimed?
The embedding models are Hugging Face folders (a CLIP such as openai/clip-vit-large-patch14, a DINO ViT-S/16
such as facebook/dino-vits16) loaded with transformers; nothing is downloaded.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .images import to_pil


def l1_distance(output, target) -> float:
    """Mean |output - target| over all pixels and channels on [0, 1], the output resized (bicubic) to the
    target's size first, as MagicBrush evaluates."""
    target_image = to_pil(target)
    output_image = to_pil(output).resize(target_image.size, Image.BICUBIC)
    a = np.asarray(output_image, dtype=np.float64) / 255.0
    b = np.asarray(target_image, dtype=np.float64) / 255.0
    return float(np.abs(a - b).mean())


def locality(output, source, mask, changed_above: float = 0.05) -> dict[str, float]:
    """How the change between source and output splits between the mask's area and the rest, at the source's
    size: mean absolute change inside and outside (on [0, 1]), and the share of outside pixels that changed by
    more than `changed_above` (any channel). The output is resized to the source (bicubic) if needed."""
    source_image = to_pil(source)
    output_image = to_pil(output)
    if output_image.size != source_image.size:
        output_image = output_image.resize(source_image.size, Image.BICUBIC)
    plane = mask[0] if mask.ndim == 3 else mask
    if tuple(plane.shape) != (source_image.size[1], source_image.size[0]):
        raise ValueError(f"the mask is {plane.shape[1]}x{plane.shape[0]} but the source is "
                         f"{source_image.size[0]}x{source_image.size[1]}; use a mask made from the source")
    inside = plane.detach().cpu().numpy() > 0.5
    if inside.all() or not inside.any():
        raise ValueError("the mask covers all of the image or none of it: there is no inside and outside to compare")
    change = np.abs(np.asarray(output_image, dtype=np.float64) - np.asarray(source_image, dtype=np.float64)) / 255.0
    return {"change_inside_mask": float(change[inside].mean()), "change_outside_mask": float(change[~inside].mean()),
            "changed_outside_share": float((change[~inside].max(axis=-1) > changed_above).mean())}


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.float().flatten()[None], b.float().flatten()[None]))


class ClipScorer:
    """CLIP image and text embeddings from a Hugging Face CLIP folder."""

    def __init__(self, folder: str, device="cpu"):
        from transformers import CLIPModel, CLIPProcessor

        self.model = CLIPModel.from_pretrained(folder).eval().to(device)
        self.processor = CLIPProcessor.from_pretrained(folder)
        self.device = device

    @torch.no_grad()
    def image_embedding(self, image) -> torch.Tensor:
        inputs = self.processor(images=[to_pil(image)], return_tensors="pt").to(self.device)
        features = self.model.get_image_features(**inputs)
        return getattr(features, "pooler_output", features)[0]

    @torch.no_grad()
    def text_embedding(self, text: str) -> torch.Tensor:
        inputs = self.processor(text=[text], return_tensors="pt", padding=True, truncation=True).to(self.device)
        features = self.model.get_text_features(**inputs)
        return getattr(features, "pooler_output", features)[0]

    def image_similarity(self, a, b) -> float:
        return _cosine(self.image_embedding(a), self.image_embedding(b))

    def text_similarity(self, image, text: str) -> float:
        return _cosine(self.image_embedding(image), self.text_embedding(text))


class DinoScorer:
    """The CLS embedding of a DINO ViT from a Hugging Face folder."""

    def __init__(self, folder: str, device="cpu"):
        from transformers import AutoImageProcessor, AutoModel

        self.model = AutoModel.from_pretrained(folder).eval().to(device)
        self.processor = AutoImageProcessor.from_pretrained(folder)
        self.device = device

    @torch.no_grad()
    def embedding(self, image) -> torch.Tensor:
        inputs = self.processor(images=[to_pil(image)], return_tensors="pt").to(self.device)
        return self.model(**inputs).last_hidden_state[0, 0]

    def similarity(self, a, b) -> float:
        return _cosine(self.embedding(a), self.embedding(b))


def evaluate(output, source=None, target=None, target_caption: str = "", output_caption: str = "",
             clip: ClipScorer | None = None, dino: DinoScorer | None = None, mask=None) -> dict[str, float]:
    """Every metric the given references and models allow; absent ones are left out, never guessed."""
    scores = {}
    if source is not None and mask is not None:
        scores.update(locality(output, source, mask))
    if target is not None:
        scores["l1"] = l1_distance(output, target)
        if clip is not None:
            scores["clip_i"] = clip.image_similarity(output, target)
        if dino is not None:
            scores["dino"] = dino.similarity(output, target)
        if clip is not None and target_caption.strip():
            scores["clip_t"] = clip.text_similarity(output, target_caption)
    if source is not None:
        if clip is not None:
            scores["emu_clip_i"] = clip.image_similarity(output, source)
        if dino is not None:
            scores["emu_dino"] = dino.similarity(output, source)
    if clip is not None and output_caption.strip():
        scores["emu_clip_out"] = clip.text_similarity(output, output_caption)
    return scores
