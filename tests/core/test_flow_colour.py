"""Optical flow that sees colour (issue 19, item 3): Farneback reads one plane, so a square textured in hue alone,
at one brightness, is invisible to a luma-only flow. The pack's flow also reads the clip's stronger chroma plane
and takes, per pixel, the plane with more texture: the square's motion is found and its noise particles follow it.
A gray clip's flow is the luma flow exactly. icedit_core only (the core tier: no ComfyUI)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from comfyui_icedit.icedit_core import optical_flow
from comfyui_icedit.icedit_core import video_noise as vn

pytest.importorskip("cv2", reason="optical flow needs OpenCV (opencv-python-headless)")

SIZE, SQUARE, STEP, FRAMES, CELL = 192, 64, 6, 6, 8  # pixels; 6 px a frame is 0.75 of a latent cell


def smooth_field(seed: int, height: int, width: int, sigma: float = 3.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    field = torch.rand((1, 1, height, width), generator=generator)
    radius = int(3 * sigma)
    kernel = torch.exp(-torch.arange(-radius, radius + 1, dtype=torch.float32) ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    field = F.conv2d(F.pad(field, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    field = F.conv2d(F.pad(field, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return field[0, 0]


def hue_square_clip(luma_texture: bool = False) -> torch.Tensor:
    """IMAGE [T, H, W, 3]: a SQUARE-pixel square whose texture is in hue alone (every pixel of it at luma 0.5)
    moving STEP px right a frame over a still background (flat gray 0.5, or a texture in luma)."""
    hue = smooth_field(1, SQUARE, SQUARE) * 4 * np.pi
    chroma = 0.12
    cb, cr = chroma * torch.cos(hue), chroma * torch.sin(hue)
    luma = 0.5
    square = torch.stack([luma + 1.402 * cr, luma - 0.344136 * cb - 0.714136 * cr, luma + 1.772 * cb], dim=-1)
    background = torch.full((SIZE, SIZE, 3), 0.5)
    if luma_texture:
        background = (0.3 + 0.4 * smooth_field(2, SIZE, SIZE)).unsqueeze(-1).expand(SIZE, SIZE, 3).clone()
    frames = []
    for t in range(FRAMES):
        frame = background.clone()
        top, left = 64, 32 + STEP * t
        frame[top:top + SQUARE, left:left + SQUARE] = square
        frames.append(frame)
    return torch.stack(frames).clamp(0, 1)


def test_the_hue_square_is_invisible_to_luma():
    clip = hue_square_clip()
    luma = optical_flow.gray_frames(clip).astype(np.int16)
    assert np.abs(luma - 128).max() <= 1  # what a luma-only flow reads: nothing moves


@pytest.mark.parametrize("background", ["flat", "luma texture"])
def test_the_flow_follows_a_square_textured_in_hue_alone(background):
    clip = hue_square_clip(luma_texture=background == "luma texture")
    flows = optical_flow.forward_flows(clip)
    for t, flow in enumerate(flows):
        inner = flow[64 + 16:64 + SQUARE - 16, 32 + STEP * t + 16:32 + STEP * t + SQUARE - 16]
        assert np.median(inner[..., 0]) == pytest.approx(STEP, abs=0.5), t
        assert abs(np.median(inner[..., 1])) < 0.5, t
    if background == "luma texture":  # the still background stays still where its luma texture is
        assert np.abs(np.median(flows[:, 8:48, 8:48], axis=(1, 2))).max() < 0.25


def test_the_squares_noise_particles_follow_it():
    flows = optical_flow.forward_flows(hue_square_clip())
    cells = np.stack([optical_flow.block_mean(flow, CELL) for flow in flows])
    rows = cols = SIZE // CELL
    carried = vn.carry_cells(cells, rows, cols)
    # The square's inner cells at frame 0 (cells 9..14 down, 5..10 across), and where 5 frames of 0.75 cells
    # take them: 3.75 cells right.
    start = carried.particles[0, 10:14, 6:10]
    end = carried.particles[-1, 10:14, 6 + 4:10 + 4]
    assert np.mean(np.isin(start, end)) >= 0.75  # with luma only: none of them move (the flow is zero there)
    assert np.mean(np.isin(start, carried.particles[-1, 10:14, 6:10])) <= 0.25  # they are no longer where they were


def test_a_gray_clip_gets_the_luma_flow_exactly():
    gray = smooth_field(4, 96, 128)
    frames = torch.stack([torch.roll(gray, shifts=3 * t, dims=1) for t in range(3)])
    clip = frames.unsqueeze(-1).expand(3, 96, 128, 3).contiguous()
    assert (optical_flow.frame_planes(clip)[:, 1:] == 128).all()  # no colour: Farneback reads luma only
    luma = optical_flow.gray_frames(clip)
    expected = np.stack([optical_flow.farneback(luma[t], luma[t + 1]) for t in range(2)])
    assert np.array_equal(optical_flow.forward_flows(clip), expected)
