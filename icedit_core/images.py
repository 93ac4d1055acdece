"""Conversions between ComfyUI IMAGE tensors and PIL images."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def to_pil(image) -> Image.Image:
    """An RGB PIL image from a [H, W, C] (or [1, H, W, C]) float tensor in [0, 1], or a PIL image."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    tensor = image[0] if image.ndim == 4 else image
    pixels = (tensor[..., :3].detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return Image.fromarray(np.ascontiguousarray(pixels), "RGB")
