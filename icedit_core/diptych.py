"""Diptych geometry: the source on the left, the same source on the right to be regenerated.

ICEdit was trained on side-by-side pairs at a panel width of 512. The official script resizes the source to
width 512 (height floored to a multiple of 8), pastes it into both halves of a 2w x h canvas and masks the right
half. Flux in ComfyUI works on 16-pixel patches (8x VAE, 2x2 patchify), so heights here are rounded to a
multiple of 16; where that rounding agrees with the official one the result is byte-identical to it.

Images follow ComfyUI's IMAGE convention: float tensors [B, H, W, C] in [0, 1]. Masks are [B, H, W].
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

PANEL_MULTIPLE = 16
DEFAULT_PANEL_WIDTH = 512


@dataclass(frozen=True, eq=False)
class DiptychLayout:
    """Everything needed to undo what `build_diptych` did."""

    source_width: int
    source_height: int
    panel_width: int
    panel_height: int
    # The sources at their original size, RGB, [B, H, W, 3]: the "before" of comparisons. The input tensor
    # itself where it already is RGB float on the CPU, so a huge source is not held twice.
    sources: torch.Tensor = field(repr=False)
    # A 16x16 thumbnail of each source panel [B, 16, 16, 3]: lets ICEditCrop see that a decoded diptych shows
    # this layout's source and not another picture of the same size.
    fingerprint: torch.Tensor = field(repr=False)

    @property
    def batch_size(self) -> int:
        return int(self.sources.shape[0])

    @property
    def diptych_width(self) -> int:
        return 2 * self.panel_width

    @property
    def diptych_height(self) -> int:
        return self.panel_height

    def describe(self) -> str:
        return (f"a {self.diptych_width}x{self.diptych_height} diptych of {self.batch_size} source(s) of "
                f"{self.source_width}x{self.source_height} at panel width {self.panel_width}")


def panel_size(source_width: int, source_height: int, panel_width: int = DEFAULT_PANEL_WIDTH) -> tuple[int, int]:
    """Panel (width, height): the given width, the height that keeps the aspect, rounded to a multiple of 16."""
    if source_width < 1 or source_height < 1:
        raise ValueError(f"source image is {source_width}x{source_height}; it needs at least one pixel each way")
    if panel_width < PANEL_MULTIPLE or panel_width % PANEL_MULTIPLE:
        raise ValueError(f"panel width {panel_width} must be a positive multiple of {PANEL_MULTIPLE} "
                         "(Flux works on 16-pixel patches)")
    exact_height = source_height * panel_width / source_width
    rounded = int(np.floor(exact_height / PANEL_MULTIPLE + 0.5)) * PANEL_MULTIPLE
    return panel_width, max(PANEL_MULTIPLE, rounded)


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """[B, H, W, C] with C in 1 (gray), 2 (gray + alpha), 3, 4 (RGBA) -> [B, H, W, 3]; alpha is dropped as
    PIL's convert("RGB") in the official script drops it."""
    if images.ndim == 3:  # a single image without batch dimension
        images = images.unsqueeze(0)
    if images.ndim != 4:
        raise ValueError(f"expected an IMAGE tensor [B, H, W, C], got shape {tuple(images.shape)}")
    channels = images.shape[-1]
    if channels in (1, 2):
        return images[..., :1].expand(*images.shape[:-1], 3).contiguous()
    if channels in (3, 4):
        return images[..., :3].contiguous()
    raise ValueError(f"IMAGE has {channels} channels; expected 1 (gray), 2, 3 (RGB) or 4 (RGBA)")


ROWS_PER_SLAB = 512  # huge images are checked, converted and resized a slab of rows at a time, not in whole copies


def _as_8bit_pil(image: torch.Tensor) -> Image.Image | None:
    """[H, W, 3] floats in [0, 1] -> an RGB PIL image when every value is an exact 8-bit level (what LoadImage
    gives), else None. Filled a slab at a time: a 100-megapixel image needs neither full-size float temporaries
    nor a full-size uint8 array beside the PIL image."""
    height, width = int(image.shape[0]), int(image.shape[1])
    out = Image.new("RGB", (width, height))
    for start in range(0, height, ROWS_PER_SLAB):
        slab = image[start:start + ROWS_PER_SLAB].float().clamp(0.0, 1.0)
        levels = torch.round(slab * 255.0)
        if not torch.equal(levels / 255.0, slab):
            return None
        out.paste(Image.fromarray(levels.to(torch.uint8).numpy(), "RGB"), (0, start))
    return out


def _resize_float_planes(image: torch.Tensor, width: int, height: int, out: torch.Tensor | None = None
                         ) -> torch.Tensor:
    """[H, W, C] float -> [height, width, C] with PIL's bicubic filter per channel, written into `out` (a float32
    [height, width, C] tensor or view) when given. Each resized channel is copied out a band of rows at a time, so
    upscaling a panel to 100 megapixels holds one PIL channel beside the result, not also a full-size copy of it."""
    if out is None:
        out = torch.empty((height, width, image.shape[-1]), dtype=torch.float32)
    for channel in range(image.shape[-1]):
        plane = np.ascontiguousarray(image[..., channel].detach().float().clamp(0.0, 1.0).numpy())
        resized = Image.fromarray(plane, "F").resize((width, height), Image.BICUBIC)
        del plane
        for top in range(0, height, ROWS_PER_SLAB):
            bottom = min(height, top + ROWS_PER_SLAB)
            band = np.asarray(resized.crop((0, top, width, bottom)))
            out[top:bottom, :, channel].numpy()[...] = band  # a view of `out`: written in place
        del resized
    return out.clamp_(0.0, 1.0)


def resize_images(images: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Resize RGB [B, H, W, 3] to (width, height) with PIL's bicubic filter, as the official script does.

    8-bit images (ComfyUI's LoadImage gives those) go through PIL's uint8 path so the result matches the
    official construction byte for byte; other images are resized per channel in float.
    """
    if images.shape[1] == height and images.shape[2] == width:
        return images.clone()
    out = torch.empty((images.shape[0], height, width, images.shape[-1]), dtype=torch.float32)
    for index, image in enumerate(images.detach().cpu()):
        source = _as_8bit_pil(image)
        if source is not None:
            resized = source.resize((width, height), Image.BICUBIC)
            del source
            out[index] = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0)
        else:
            _resize_float_planes(image, width, height, out=out[index])
    return out.to(images.dtype)


FINGERPRINT_SIZE = 16
# Mean absolute difference of the 16x16 thumbnails above which a decoded left panel is not the layout's source.
# A VAE round trip or ICEdit's re-drawn left panel stays far below; another photo is usually well above.
FINGERPRINT_TOLERANCE = 0.1


def fingerprint(panels: torch.Tensor) -> torch.Tensor:
    """[B, h, w, 3] -> [B, 16, 16, 3] area averages."""
    return F.adaptive_avg_pool2d(panels.movedim(-1, 1).float(), FINGERPRINT_SIZE).movedim(1, -1)


def build_diptych(images: torch.Tensor, panel_width: int = DEFAULT_PANEL_WIDTH
                  ) -> tuple[torch.Tensor, torch.Tensor, DiptychLayout]:
    """Sources [B, H, W, C] -> (diptych [B, h, 2w, 3], mask [B, h, 2w] with 1 on the right half, layout)."""
    if images.ndim == 4 and (images.shape[0] == 0 or images.shape[1] == 0 or images.shape[2] == 0):
        raise ValueError(f"the IMAGE batch is empty (shape {tuple(images.shape)}): no image or video frame to edit "
                         "(a video whose frames could not be decoded gives this)")
    sources = to_rgb(images).float().cpu()
    batch, height, width, _ = sources.shape
    pw, ph = panel_size(width, height, panel_width)
    panel = resize_images(sources, pw, ph)
    diptych = torch.cat([panel, panel], dim=2)
    mask = torch.zeros((batch, ph, 2 * pw), dtype=torch.float32)
    mask[:, :, pw:] = 1.0
    layout = DiptychLayout(source_width=width, source_height=height, panel_width=pw, panel_height=ph,
                           sources=sources, fingerprint=fingerprint(panel))
    return diptych, mask, layout


RIGHT_SAME, RIGHT_BLANK = "same as left", "blank"
ASPECT_TOLERANCE = 0.02


def apply_layout(images: torch.Tensor, layout: DiptychLayout, right: str = RIGHT_SAME) -> torch.Tensor:
    """Lay any image of the source's aspect (a control map, a depth map, a mask as [B, H, W, C]) out like the
    diptych: resized to the panel, on the left, and on the right either the same again or black."""
    rgb = to_rgb(images).float().cpu()
    height, width = int(rgb.shape[1]), int(rgb.shape[2])
    ratio = (width / height) / (layout.source_width / layout.source_height)
    if abs(ratio - 1.0) > ASPECT_TOLERANCE:
        raise ValueError(f"the image is {width}x{height} but the layout's source is {layout.source_width}x"
                         f"{layout.source_height}: the aspect ratios differ by {abs(ratio - 1) * 100:.0f} %, so it "
                         "cannot be laid out on the same panels. Make it from the same source image.")
    if right not in (RIGHT_SAME, RIGHT_BLANK):
        raise ValueError(f"right = {right!r}; use {RIGHT_SAME!r} or {RIGHT_BLANK!r}")
    panel = resize_images(rgb, layout.panel_width, layout.panel_height)
    other = panel if right == RIGHT_SAME else torch.zeros_like(panel)
    return torch.cat([panel, other], dim=2)


def check_diptych_matches(image: torch.Tensor, layout: DiptychLayout, what: str) -> None:
    """Raise a clear error when `image` is not the diptych this layout describes."""
    if image.ndim != 4:
        raise ValueError(f"{what} must be an IMAGE [B, H, W, C]; got shape {tuple(image.shape)}")
    height, width = int(image.shape[1]), int(image.shape[2])
    if (width, height) != (layout.diptych_width, layout.diptych_height):
        raise ValueError(
            f"{what} is {width}x{height}, but the layout describes {layout.describe()}. "
            "The layout must come from the ICEditDiptych node that made this diptych.")
    batch = int(image.shape[0])
    if layout.batch_size != 1 and batch % layout.batch_size:
        raise ValueError(f"{what} has a batch of {batch}, but the layout holds {layout.batch_size} sources; "
                         "the batch must be a multiple of the number of sources.")


def panels(diptych: torch.Tensor, layout: DiptychLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """(left, right) panels of a decoded diptych [N, h, 2w, C], RGB, at panel size."""
    check_diptych_matches(diptych, layout, "the decoded diptych")
    rgb = to_rgb(diptych).float().cpu()
    return rgb[:, :, :layout.panel_width], rgb[:, :, layout.panel_width:]


def source_panels(layout: DiptychLayout) -> torch.Tensor:
    """The sources resized to panel size, as the left panel shows them: [B, h, w, 3]."""
    return resize_images(layout.sources, layout.panel_width, layout.panel_height)


# The comparison is for looking at: past this many pixels per side it is scaled down, so a 100-megapixel source
# does not cost a second and third full-size copy (the edited output always keeps the source's size).
COMPARISON_MAX_PIXELS = 2048 * 2048


def comparison_size(width: int, height: int) -> tuple[int, int]:
    if width * height <= COMPARISON_MAX_PIXELS:
        return width, height
    scale = (COMPARISON_MAX_PIXELS / (width * height)) ** 0.5
    return max(1, round(width * scale)), max(1, round(height * scale))


def crop_edit(diptych: torch.Tensor, layout: DiptychLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoded diptych [N, h, 2w, C] -> (edited panels at the source size [N, H, W, 3],
    before|after comparison [N, H', 2W', 3], at the source size up to COMPARISON_MAX_PIXELS per side).
    N may be a multiple of the number of sources (several samples)."""
    _, right = panels(diptych, layout)
    # Written in place, panel by panel: a 100-megapixel edit exists once, not also as a list to stack.
    edited = torch.empty((right.shape[0], layout.source_height, layout.source_width, 3), dtype=torch.float32)
    for index, panel in enumerate(right):
        _resize_float_planes(panel, layout.source_width, layout.source_height, out=edited[index])
    def scaled_edits(width, height):
        return torch.stack([_resize_float_planes(panel, width, height) for panel in right])

    return edited, before_after(layout.sources, edited, scaled_edits)


def before_after(sources: torch.Tensor, edited: torch.Tensor, scaled_edits) -> torch.Tensor:
    """Sources [B, H, W, 3] | their edits [N, H, W, 3] side by side, at the source size up to COMPARISON_MAX_PIXELS
    per side; `scaled_edits(width, height)` gives the edits at a smaller comparison size from what they were
    resized from (not from the full-size edit). N may be a multiple of B: several samples per source come tiled,
    as ComfyUI's RepeatLatentBatch makes them: s0 s1 s0 s1 ..."""
    source_height, source_width = int(sources.shape[1]), int(sources.shape[2])
    width, height = comparison_size(source_width, source_height)
    if (width, height) == (source_width, source_height):
        before, after = sources, edited
    else:
        before, after = resize_images(sources, width, height), scaled_edits(width, height)
    before = before.repeat(edited.shape[0] // sources.shape[0], 1, 1, 1)
    return torch.cat([before.to(after.dtype), after], dim=2)


def check_source_matches(diptych: torch.Tensor, layout: DiptychLayout) -> None:
    """Raise when the decoded diptych's left panel does not show the layout's source: the layout then comes from a
    different picture (of the same size), and the "before" and the crop would be wrong."""
    left, _ = panels(diptych, layout)
    expected = layout.fingerprint.repeat(left.shape[0] // layout.batch_size, 1, 1, 1)
    differences = (fingerprint(left) - expected).abs().mean(dim=(1, 2, 3))
    worst = float(differences.max())
    if worst > FINGERPRINT_TOLERANCE:
        raise ValueError(
            f"the decoded diptych's left panel does not show the source this layout was made from (mean difference "
            f"{worst:.2f} on a {FINGERPRINT_SIZE}x{FINGERPRINT_SIZE} thumbnail; a faithful left panel stays under "
            f"{FINGERPRINT_TOLERANCE}). The layout probably comes from another picture of the same size: link the "
            "layout of the ICEditDiptych node that made this diptych. Random-weight test models draw noise on the "
            "left as well: turn check_source off for those.")


def check_mask_matches(image: torch.Tensor, mask: torch.Tensor) -> None:
    """A Fill mask must cover the diptych pixel for pixel; a resized or foreign mask is an error, not a guess."""
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if mask.ndim != 3:
        raise ValueError(f"MASK must be [B, H, W]; got shape {tuple(mask.shape)}")
    if image.ndim != 4:
        raise ValueError(f"IMAGE must be [B, H, W, C]; got shape {tuple(image.shape)}")
    if tuple(mask.shape[1:]) != tuple(image.shape[1:3]):
        raise ValueError(f"MASK is {mask.shape[2]}x{mask.shape[1]} but the diptych IMAGE is "
                         f"{image.shape[2]}x{image.shape[1]}; use the mask that ICEditDiptych made with it.")
    if mask.shape[0] not in (1, image.shape[0]):
        raise ValueError(f"MASK has a batch of {mask.shape[0]} but the IMAGE has {image.shape[0]}; "
                         "give one mask or one per image.")
