"""How much an edited clip flickers: each edited frame against the previous edited frame warped along the
*source's* motion, over the pixels where the source's own flow is trustworthy (forward-backward consistent, inside
the frame), as the mean absolute difference in 8-bit levels. The same number for the source clip says how well
the flow explains the source itself (lighting changes, flow errors, compression); their ratio near 1 means the
edit is as steady as its input. A warping error in the manner of Lai et al., ECCV 2018.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import optical_flow
from .diptych import to_rgb


@dataclass(frozen=True)
class FlickerReport:
    edited: float  # mean absolute difference, 8-bit levels (0-255)
    source: float
    frames: int
    trusted_fraction: float  # share of the compared pixels where the source's flow passed the check
    resized: bool  # the edited frames were resized to the source's size first

    @property
    def ratio(self) -> float | None:
        return self.edited / self.source if self.source > 0 else None

    def text(self) -> str:
        ratio = (f"ratio {self.ratio:.2f} (1 = as steady as the source)" if self.ratio is not None else
                 "the source is perfectly steady, so there is no ratio")
        return (f"Flicker over {self.frames} frames: edited {self.edited:.2f}, source {self.source:.2f} "
                f"(mean absolute difference to the previous frame moved along the source's motion, 8-bit "
                f"levels, on the {self.trusted_fraction * 100:.0f} % of pixels where the source's flow is "
                f"consistent); {ratio}."
                + (" The edited frames were resized to the source's size first." if self.resized else ""))


def check_clip(frames: torch.Tensor, what: str) -> None:
    if frames.ndim != 4 or frames.shape[-1] < 1:
        raise ValueError(f"{what} must be IMAGE frames [T, H, W, C]; got shape {tuple(frames.shape)}")
    if frames.shape[0] < 2:
        raise ValueError(f"{what} has {frames.shape[0]} frame(s); flicker compares consecutive frames, so it "
                         "needs at least 2")


def flicker(source: torch.Tensor, edited: torch.Tensor) -> FlickerReport:
    """The flicker of `edited` against the motion of `source` (IMAGE frames [T, H, W, C], same T)."""
    check_clip(source, "the source clip")
    check_clip(edited, "the edited clip")
    if source.shape[0] != edited.shape[0]:
        raise ValueError(f"the source clip has {source.shape[0]} frames and the edited clip {edited.shape[0]}; "
                         "flicker compares them frame by frame")
    source, edited = to_rgb(source).float().cpu(), to_rgb(edited).float().cpu()
    resized = tuple(edited.shape[1:3]) != tuple(source.shape[1:3])
    if resized:
        edited = F.interpolate(edited.movedim(-1, 1), size=tuple(source.shape[1:3]), mode="area").movedim(1, -1)
    forward, backward = optical_flow.clip_flows(source)
    sums = {"edited": 0.0, "source": 0.0}
    trusted_pixels = 0
    for t in range(len(forward)):
        trusted = torch.from_numpy(optical_flow.consistent(forward[t], backward[t]))
        if not trusted.any():
            continue
        trusted_pixels += int(trusted.sum())
        for name, clip in (("edited", edited), ("source", source)):
            warped, _ = optical_flow.warp_back(clip[t], backward[t])
            sums[name] += float((warped - clip[t + 1]).abs().mean(dim=-1)[trusted].sum())
    compared = len(forward) * source.shape[1] * source.shape[2]
    if trusted_pixels == 0:
        raise ValueError("the source's optical flow is consistent nowhere (frames without texture, or cuts between "
                         "every frame), so flicker cannot be measured on this clip")
    return FlickerReport(edited=255.0 * sums["edited"] / trusted_pixels, source=255.0 * sums["source"] / trusted_pixels,
                         frames=int(source.shape[0]), trusted_fraction=trusted_pixels / compared, resized=resized)

