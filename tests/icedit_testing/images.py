"""Synthetic images and masks shared by the region tests of two tiers."""
from __future__ import annotations

import torch


def big_image(width=3000, height=2000):
    ys = torch.linspace(0, 1, height).view(height, 1, 1)
    xs = torch.linspace(0, 1, width).view(1, width, 1)
    noise = torch.rand((height, width, 1), generator=torch.Generator().manual_seed(0)) * 0.2
    return torch.cat([0.2 + 0.6 * xs + 0 * ys, 0.3 + 0.5 * ys + 0 * xs, 0.4 + noise], dim=-1).unsqueeze(0)


def rect_mask(width, height, left, top, right, bottom):
    mask = torch.zeros((1, height, width))
    mask[:, top:bottom, left:right] = 1
    return mask
