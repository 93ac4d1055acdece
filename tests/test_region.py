"""Region edits: outside the feathered mask the output is the source bit for bit, the edit lands where the mask
was. The "sampler path" here is a test double - a known transformation of the diptych's right panel - between
the real nodes (Region Crop -> Diptych -> [edit] -> Crop -> Region Stitch)."""
from __future__ import annotations

import pytest
import torch

from comfyui_icedit.icedit_core import region as rg
from comfyui_icedit.nodes.edit import ICEditCrop, ICEditDiptych
from comfyui_icedit.nodes.region import ICEditRegionCrop, ICEditRegionStitch


def big_image(width=3000, height=2000):
    ys = torch.linspace(0, 1, height).view(height, 1, 1)
    xs = torch.linspace(0, 1, width).view(1, width, 1)
    noise = torch.rand((height, width, 1), generator=torch.Generator().manual_seed(0)) * 0.2
    return torch.cat([0.2 + 0.6 * xs + 0 * ys, 0.3 + 0.5 * ys + 0 * xs, 0.4 + noise], dim=-1).unsqueeze(0)


def rect_mask(width, height, left, top, right, bottom):
    mask = torch.zeros((1, height, width))
    mask[:, top:bottom, left:right] = 1
    return mask


def edit_through_the_nodes(image, mask, padding=64, feather=16, panel_width=256):
    """Region Crop -> Diptych -> invert the right panel (the stand-in for sampling + decoding) -> Crop -> Stitch."""
    window, region = ICEditRegionCrop.execute(image, padding, feather, mask).result
    diptych, _, layout = ICEditDiptych.execute(window, panel_width).result
    decoded = diptych.clone()
    decoded[:, :, layout.panel_width:] = 1 - decoded[:, :, layout.panel_width:]
    edited, _ = ICEditCrop.execute(decoded, layout).result
    return ICEditRegionStitch.execute(edited, region).result[0], region, window


def test_outside_the_feathered_mask_a_3000x2000_image_is_untouched_bit_for_bit():
    image = big_image()
    mask = rect_mask(3000, 2000, 1400, 900, 1520, 980)
    out, region, window = edit_through_the_nodes(image, mask)
    assert out.shape == image.shape
    outside = region.alpha[0] == 0
    assert torch.equal(out[0][outside], image[0][outside])
    # The window is the mask's box grown by feather and padding, not the whole image.
    assert window.shape[1:3] == (80 + 2 * (15 + 64), 120 + 2 * (15 + 64))
    # The edit landed exactly where the mask is: inside it the pixels are inverted (up to the resize round trip).
    inside = (1 - image[0, 900:980, 1400:1520]) - out[0, 900:980, 1400:1520]
    assert inside.abs().mean() < 0.02
    changed = (out[0] != image[0]).any(-1).nonzero()
    top, left = changed.min(0).values.tolist()
    bottom, right = changed.max(0).values.tolist()
    assert (top, left) >= (900 - 16, 1400 - 16) and (bottom, right) <= (980 + 16, 1520 + 16)
    assert (top, left) <= (900, 1400) and (bottom, right) >= (979, 1519)


@pytest.mark.parametrize("box", [(0, 0, 50, 40), (2950, 1960, 3000, 2000), (0, 900, 3000, 960)])
def test_masks_touching_the_borders(box):
    image = big_image()
    mask = rect_mask(3000, 2000, *box)
    out, region, window = edit_through_the_nodes(image, mask)
    assert 0 <= region.left < region.right <= 3000 and 0 <= region.top < region.bottom <= 2000
    outside = region.alpha[0] == 0
    assert torch.equal(out[0][outside], image[0][outside])
    left, top, right, bottom = box
    assert (out[0, top:bottom, left:right] - (1 - image[0, top:bottom, left:right])).abs().mean() < 0.05


def test_an_empty_mask_changes_nothing():
    image = big_image(600, 400)
    out, region, window = edit_through_the_nodes(image, torch.zeros((1, 400, 600)))
    assert torch.equal(out, image)
    assert window.shape == image.shape  # the window falls back to the whole image


@pytest.mark.parametrize("mask", [None, torch.ones((1, 400, 600))], ids=["no mask", "full mask"])
def test_no_mask_or_a_full_mask_edits_the_whole_image_at_full_resolution(mask):
    image = big_image(600, 400)
    out, region, window = edit_through_the_nodes(image, mask)
    assert out.shape == image.shape and window.shape == image.shape
    assert ((1 - image) - out).abs().mean() < 0.03


def test_the_feather_is_exactly_zero_beyond_its_radius():
    mask = rect_mask(200, 100, 80, 40, 120, 60)
    for radius in (0, 1, 5, 16):
        alpha = rg.feathered(mask, radius)
        assert torch.all(alpha[mask > 0.5] == 1)
        distance_ok = torch.zeros_like(alpha, dtype=torch.bool)
        distance_ok[:, max(0, 40 - radius):60 + radius, max(0, 80 - radius):120 + radius] = True
        assert torch.all(alpha[~distance_ok] == 0)


def test_a_mask_of_another_size_is_refused():
    with pytest.raises(ValueError, match="the mask is .* but the image is 600x400"):
        rg.crop_region(big_image(600, 400), torch.zeros((1, 100, 100)))
