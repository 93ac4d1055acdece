"""Optical flow between video frames (OpenCV's Farneback), warping along it, and where it can be trusted.

OpenCV is an optional dependency: only the video nodes need it, so it is imported when a flow is asked for, and
its absence is one clear message. Farneback needs no model download; its limits (say so where it is used): it
assumes brightness constancy and smooth motion, so it blurs motion boundaries, loses fast motion beyond its
pyramid's reach (about a tenth of the frame per frame at these settings) and gives noise on flat, textureless
areas. The forward-backward check below marks where it failed.

Farneback reads one 8-bit plane. Luma alone misses what is drawn in colour only (a texture in hue at one
brightness does not move for it), so where a pair of frames has colour texture the flow is computed on luma and
on the pair's stronger chroma plane, and a pixel takes the chroma flow where the colour has several times the
luma's texture around it (else the luma flow); a gray clip gets the luma flow exactly. Every choice is made per
pair of frames, from 8-bit planes of each frame, so the flow between two frames is the same whatever clip or
segment they are read in.

Flows are numpy float32 [H, W, 2] in pixels, (dx, dy): `flow[y, x]` is where pixel (x, y) of the first frame
went in the second one.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .diptych import to_rgb

OPENCV_PACKAGE = "opencv-python-headless"
# Polynomial expansion over 7-pixel neighbourhoods with sigma 1.5 and a 31-pixel window: OpenCV's documented
# setting for smoother, more robust flow; with the 0.5 pyramid this follows motions of several patches per frame.
FARNEBACK_SETTINGS = {"pyr_scale": 0.5, "winsize": 31, "iterations": 5, "poly_n": 7, "poly_sigma": 1.5, "flags": 0}
# Forward-backward consistency (Sundaram et al., ECCV 2010): a pixel's flow there and back may miss by 1 % of
# the motion's squared length plus half a pixel squared before the pixel counts as occluded or mis-tracked.
CONSISTENCY_RELATIVE, CONSISTENCY_ABSOLUTE = 0.01, 0.5
# Luma or chroma per pixel, by their gradient energy over this box (pixels) around it, about Farneback's own
# window: the chroma flow only where the chroma texture is CHROMA_OVER_LUMA times the luma's. Luma tracks better
# where both have texture (full resolution; a video's chroma is subsampled and compressed harder), so chroma is
# for what luma does not show.
TEXTURE_WINDOW, CHROMA_OVER_LUMA = 15, 4.0


class OpenCVMissing(ImportError):
    pass


def _cv2():
    try:
        import cv2
    except ImportError:
        raise OpenCVMissing(
            f"optical flow needs OpenCV, which is not installed in the Python that runs ComfyUI. Install it "
            f"there: `python -m pip install {OPENCV_PACKAGE}` (the pack's other nodes work without it).") from None
    return cv2


def _to_uint8(plane: torch.Tensor) -> np.ndarray:
    return (plane.clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy()


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114  # BT.601


def gray_frames(frames: torch.Tensor) -> np.ndarray:
    """IMAGE frames [T, H, W, C] in [0, 1] -> uint8 luma [T, H, W] (BT.601)."""
    return _to_uint8(_luma(to_rgb(frames).float()))


def frame_planes(frames: torch.Tensor) -> np.ndarray:
    """IMAGE frames [T, H, W, C] in [0, 1] -> uint8 [T, 3, H, W]: each frame's luma, Cb and Cr (BT.601, chroma
    centred on 128), each frame on its own. The flow between two frames reads these planes of those two frames
    only, so a clip's flows do not depend on which frames came with it: a clip edited in segments gets the flows
    of the whole clip (the next segment needs only its predecessor's last planes)."""
    rgb = to_rgb(frames).float()
    luma = _luma(rgb)
    centre = 128 / 255  # exactly 128 after rounding where there is no colour, never 127 or 128 by float noise
    cb, cr = (rgb[..., 2] - luma) * 0.564 + centre, (rgb[..., 0] - luma) * 0.713 + centre
    return _to_uint8(torch.stack([luma, cb, cr], dim=1))


def _gradient_energy(planes: torch.Tensor | np.ndarray, window: int = 1) -> torch.Tensor:
    """[T, H, W] -> squared gradient magnitude per pixel, averaged over a window x window box (odd)."""
    planes = torch.as_tensor(planes).float()
    gy, gx = torch.gradient(planes, dim=(-2, -1))
    energy = (gx ** 2 + gy ** 2).unsqueeze(1)
    if window > 1:
        energy = F.avg_pool2d(energy, window, stride=1, padding=window // 2, count_include_pad=False)
    return energy[:, 0]


def _pyramid_levels(height: int, width: int) -> int:
    """As many halvings as keep the coarsest level at 16 pixels or more (at least one)."""
    return max(1, int(np.log2(max(1, min(height, width) // 16))))


def farneback(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Dense flow from one uint8 gray frame to the next: [H, W, 2] float32 pixels."""
    cv2 = _cv2()
    levels = _pyramid_levels(*first.shape)
    return cv2.calcOpticalFlowFarneback(first, second, None, levels=levels, **FARNEBACK_SETTINGS)


def _stretched(chroma: np.ndarray) -> np.ndarray:
    """A chroma plane (uint8, centred on 128) with its contrast stretched to the full 8 bits: colour differences
    are a few tens of levels, too faint for Farneback (a hue texture of +-31 levels gave 0.6 px for 6 px of
    motion; stretched, 5.96)."""
    offset = chroma.astype(np.float32) - 128.0
    reach = float(np.abs(offset).max())
    return np.clip(offset * (127.0 / reach) + 128.0, 0, 255).round().astype(np.uint8)


def _pair_chroma(pair: np.ndarray) -> int | None:
    """Of two frames' planes [2, 3, H, W]: the chroma plane (1: Cb, 2: Cr) whose gradients carry more energy over
    the two, or None when neither has any (a gray pair)."""
    energies = [float(_gradient_energy(pair[:, plane]).sum()) for plane in (1, 2)]
    return 1 + int(np.argmax(energies)) if max(energies) > 0 else None


def pair_flow(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The flow from one frame to the next, from their frame_planes ([3, H, W] uint8 each): [H, W, 2] pixels.
    Farneback reads the luma, and, where the pair has colour texture, its stronger chroma plane stretched to the
    full 8 bits over the two; a pixel takes the chroma flow where, in the first frame, the chroma has
    CHROMA_OVER_LUMA times the luma's texture around it (compared at the planes' own contrast), else the luma
    flow. A gray pair gets the luma flow exactly."""
    pair = np.stack([first, second])
    luma_flow = farneback(pair[0, 0], pair[1, 0])
    chroma = _pair_chroma(pair)
    if chroma is None:
        return luma_flow
    stretched = _stretched(pair[:, chroma])
    chroma_flow = farneback(stretched[0], stretched[1])
    luma_texture, chroma_texture = (_gradient_energy(plane[None], TEXTURE_WINDOW)[0].numpy()
                                    for plane in (first[0], first[chroma]))
    use_chroma = chroma_texture > CHROMA_OVER_LUMA * luma_texture
    return np.where(use_chroma[..., None], chroma_flow, luma_flow)


def flows_from_planes(planes: np.ndarray, backward: bool = False) -> np.ndarray:
    """[T - 1, H, W, 2] from frame_planes [T, 3, H, W]: flow t -> t + 1 for each t, or t + 1 -> t when `backward`."""
    pairs = [(planes[t + 1], planes[t]) if backward else (planes[t], planes[t + 1]) for t in range(len(planes) - 1)]
    if not pairs:
        return np.zeros((0, *planes.shape[2:], 2), dtype=np.float32)
    return np.stack([pair_flow(first, second) for first, second in pairs])


def forward_flows(frames: torch.Tensor) -> np.ndarray:
    """Flows of a clip [T, H, W, C] from each frame to the next: [T - 1, H, W, 2]."""
    return flows_from_planes(frame_planes(frames))


def clip_flows(frames: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(forward, backward) flows of a clip [T, H, W, C] (T >= 2): forward[t] goes frame t -> t + 1, backward[t]
    goes frame t + 1 -> t; both [T - 1, H, W, 2]."""
    planes = frame_planes(frames)
    return flows_from_planes(planes), flows_from_planes(planes, backward=True)


def _pixel_grid(height: int, width: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([xs, ys], axis=-1)


def _sample(field: torch.Tensor, positions: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Bilinear samples of `field` [C, H, W] at pixel positions [H', W', 2] (x, y); zero outside. Returns the
    samples [C, H', W'] and a bool [H', W'] mask of the positions inside the frame."""
    height, width = field.shape[-2:]
    grid = torch.from_numpy(positions.copy())
    grid[..., 0] = grid[..., 0] * (2.0 / max(width - 1, 1)) - 1.0
    grid[..., 1] = grid[..., 1] * (2.0 / max(height - 1, 1)) - 1.0
    sampled = F.grid_sample(field.unsqueeze(0).float(), grid.unsqueeze(0), mode="bilinear", padding_mode="zeros",
                            align_corners=True)[0]
    inside = ((positions[..., 0] >= 0) & (positions[..., 0] <= width - 1)
              & (positions[..., 1] >= 0) & (positions[..., 1] <= height - 1))
    return sampled, inside


def warp_back(image: torch.Tensor, backward: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Frame t [H, W, C] brought to frame t + 1 along `backward` (frame t + 1 -> t): each pixel of t + 1 takes
    the bilinear sample of t where it came from. Returns the warped image and where that lay inside frame t."""
    positions = _pixel_grid(*backward.shape[:2]) + backward
    sampled, inside = _sample(image.movedim(-1, 0), positions)
    return sampled.movedim(0, -1), inside


def consistent(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Bool [H, W] over frame t + 1: where going back to frame t and forward again lands where it started."""
    positions = _pixel_grid(*backward.shape[:2]) + backward
    there, inside = _sample(torch.from_numpy(forward).permute(2, 0, 1), positions)
    there = there.permute(1, 2, 0).numpy()
    miss = np.sum((backward + there) ** 2, axis=-1)
    allowed = CONSISTENCY_RELATIVE * (np.sum(backward ** 2, axis=-1) + np.sum(there ** 2, axis=-1)) \
        + CONSISTENCY_ABSOLUTE
    return inside & (miss <= allowed)


def block_mean(flow: np.ndarray, block: int) -> np.ndarray:
    """A pixel flow [H, W, 2] at 1/block resolution, in units of blocks: the mean motion of each block
    (H and W must be multiples of block)."""
    height, width = flow.shape[:2]
    if height % block or width % block:
        raise ValueError(f"the flow is {width}x{height}, not a multiple of {block} both ways")
    return flow.reshape(height // block, block, width // block, block, 2).mean(axis=(1, 3)) / block
