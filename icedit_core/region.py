"""Region edits on images of any size: crop a context window around a mask, edit the window at ICEdit's panel
width, stitch the edit back into the full-resolution source with a feathered blend.

Pixels outside the feathered mask are the source's, bit for bit: the blend weight is exactly 0 there (a
finite-support blur of the mask, never a Gaussian tail), and those pixels are copied, not blended.
Images are [B, H, W, C] floats in [0, 1]; masks [B, H, W] or [H, W].
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass(frozen=True, eq=False)
class Region:
    """Where the window was cut and how to blend the edit back."""

    left: int
    top: int
    right: int   # exclusive
    bottom: int  # exclusive
    sources: torch.Tensor = field(repr=False)  # [B, H, W, C] full resolution
    alpha: torch.Tensor = field(repr=False)    # [B, H, W] blend weight in [0, 1], exactly 0 outside the feather

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


def _as_batch_mask(mask: torch.Tensor | None, images: torch.Tensor) -> torch.Tensor:
    batch, height, width = images.shape[:3]
    if mask is None:
        return torch.ones((batch, height, width))
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if mask.ndim != 3 or tuple(mask.shape[1:]) != (height, width):
        raise ValueError(f"the mask is {tuple(mask.shape)} but the image is {width}x{height}; they must match")
    if mask.shape[0] not in (1, batch):
        raise ValueError(f"the mask has a batch of {mask.shape[0]}, the image {batch}")
    return mask.float().clamp(0, 1).expand(batch, -1, -1).cpu()


def feathered(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """The mask dilated by `radius` and softened over it: two box blurs of width radius + 1 after a max-pool
    dilation, so the weight is 1 on the mask, falls to 0 over `radius` pixels, and is exactly 0 beyond."""
    if radius <= 0:
        return (mask > 0.5).float()
    hard = (mask > 0.5).float().unsqueeze(1)
    half = radius // 2
    grown = F.max_pool2d(hard, 2 * half + 1, stride=1, padding=half)
    size = radius - half  # the two blurs spread the remaining radius - half pixels
    soft = grown
    for _ in range(2):
        pad = size // 2
        soft = F.avg_pool2d(F.pad(soft, (pad, size - 1 - pad, pad, size - 1 - pad), mode="constant"), size,
                            stride=1) if size > 1 else soft
    return torch.maximum(soft, hard).clamp(0, 1).squeeze(1)


def crop_region(images: torch.Tensor, mask: torch.Tensor | None = None, padding: int = 64,
                feather: int = 16) -> tuple[torch.Tensor, Region]:
    """The window around the mask (all images of the batch share one window), with `padding` pixels of context
    beyond the feathered mask on every side, clamped to the image. No mask, or a full one: the whole image.
    An empty mask also gives the whole image, and stitching it back changes nothing."""
    if images.ndim != 4:
        raise ValueError(f"expected an IMAGE [B, H, W, C], got shape {tuple(images.shape)}")
    if padding < 0 or feather < 0:
        raise ValueError(f"padding ({padding}) and feather ({feather}) cannot be negative")
    images = images.float().cpu()
    batch, height, width = images.shape[:3]
    hard = _as_batch_mask(mask, images)
    alpha = feathered(hard, feather)
    covered = (alpha > 0).any(dim=0)
    if not covered.any():
        left, top, right, bottom = 0, 0, width, height
    else:
        rows = torch.nonzero(covered.any(dim=1)).flatten()
        cols = torch.nonzero(covered.any(dim=0)).flatten()
        top, bottom = max(0, int(rows[0]) - padding), min(height, int(rows[-1]) + 1 + padding)
        left, right = max(0, int(cols[0]) - padding), min(width, int(cols[-1]) + 1 + padding)
    region = Region(left, top, right, bottom, sources=images, alpha=alpha)
    return images[:, top:bottom, left:right, :].clone(), region


def stitch(edits: torch.Tensor, region: Region) -> torch.Tensor:
    """Blend the edited window (any size: it is resized back to the window) into the full-resolution sources."""
    if edits.ndim != 4:
        raise ValueError(f"expected an IMAGE [B, H, W, C], got shape {tuple(edits.shape)}")
    sources = region.sources
    batch = sources.shape[0]
    if edits.shape[0] % batch:
        raise ValueError(f"{edits.shape[0]} edited images for {batch} sources; the batch must be a multiple")
    repeats = edits.shape[0] // batch
    channels = sources.shape[-1]
    edit = edits[..., :channels].float().cpu()
    if edit.shape[-1] < channels:  # e.g. an RGBA source: keep its alpha
        edit = torch.cat([edit, sources.repeat(repeats, 1, 1, 1)[:, region.top:region.bottom,
                                                                 region.left:region.right, edit.shape[-1]:]], -1)
    if (edit.shape[1], edit.shape[2]) != (region.height, region.width):
        edit = F.interpolate(edit.movedim(-1, 1), size=(region.height, region.width), mode="bicubic",
                             antialias=True, align_corners=False).movedim(1, -1).clamp(0, 1)
    out = sources.repeat(repeats, 1, 1, 1).clone()
    window = out[:, region.top:region.bottom, region.left:region.right, :]
    weight = region.alpha.repeat(repeats, 1, 1)[:, region.top:region.bottom, region.left:region.right, None]
    blended = window * (1 - weight) + edit * weight
    out[:, region.top:region.bottom, region.left:region.right, :] = torch.where(weight > 0, blended, window)
    return out
