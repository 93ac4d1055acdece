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


def edit_through_the_nodes(image, mask, padding=64, feather=16, panel_width=256, color_match="off"):
    """Region Crop -> Diptych -> invert the right panel (the stand-in for sampling + decoding) -> Crop -> Stitch.
    (An inverted window has no colours in common with the original to match: colour matching is off here.)"""
    window, region = ICEditRegionCrop.execute(image, padding, feather, mask).result
    diptych, _, layout = ICEditDiptych.execute(window, panel_width).result
    decoded = diptych.clone()
    decoded[:, :, layout.panel_width:] = 1 - decoded[:, :, layout.panel_width:]
    edited, _ = ICEditCrop.execute(decoded, layout).result
    return ICEditRegionStitch.execute(edited, region, color_match).result[0], region, window


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


@pytest.mark.parametrize("mask", [torch.zeros((1, 400, 600)), torch.zeros((1, 64, 64))],
                         ids=["empty", "Load Image's placeholder"])
def test_an_empty_mask_edits_the_whole_image_and_says_so(mask):
    image = big_image(600, 400)
    output = ICEditRegionCrop.execute(image, 64, 16, mask)
    window, region = output.result
    assert window.shape == image.shape and "the mask is empty" in output.ui.as_dict()["text"][0]
    out, _, _ = edit_through_the_nodes(image, mask)
    assert ((1 - image) - out).abs().mean() < 0.03


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
        rg.crop_region(big_image(600, 400), torch.ones((1, 100, 100)))  # painted, but on another image


def colour_shifted_edit(window, region):
    """What a model that drifts does: the whole window's colours shifted and scaled per channel, and new content
    (a flat patch) where the mask is."""
    drift = torch.tensor([0.85, 1.1, 0.9]) * window + torch.tensor([0.08, -0.05, 0.06])
    hard = region.alpha[:, region.top:region.bottom, region.left:region.right] == 1
    drift[hard] = torch.tensor([0.9, 0.2, 0.2])
    return drift.clamp(0, 1)


def seam_difference(out, image, region):
    """Mean absolute difference from the original across the seam: where the edit is blended in (0 < alpha < 1)."""
    band = (region.alpha[0] > 0) & (region.alpha[0] < 1)
    return float((out[0][band] - image[0][band]).abs().mean())


@pytest.mark.parametrize("mode", ["mean-std", "histogram"])
def test_colour_matching_removes_the_seam_of_a_drifted_edit_on_3000x2000(mode):
    image = big_image()
    window, region = ICEditRegionCrop.execute(image, 64, 16, rect_mask(3000, 2000, 1400, 900, 1520, 980)).result
    edited = colour_shifted_edit(window, region)
    plain = ICEditRegionStitch.execute(edited, region, "off").result[0]
    matched = ICEditRegionStitch.execute(edited, region, mode).result[0]
    unmatched_seam, matched_seam = seam_difference(plain, image, region), seam_difference(matched, image, region)
    assert matched_seam * 5 <= unmatched_seam, (matched_seam, unmatched_seam)
    outside = region.alpha[0] == 0
    assert torch.equal(matched[0][outside], image[0][outside])  # still the original, bit for bit
    inside = region.alpha[0] == 1
    assert (matched[0][inside] - torch.tensor([0.9, 0.2, 0.2])).abs().mean() < 0.25  # the new content stays


@pytest.mark.parametrize("box", [(0, 0, 50, 40), (2950, 1960, 3000, 2000), (0, 900, 3000, 960)])
def test_colour_matching_with_masks_on_the_borders(box):
    image = big_image()
    window, region = ICEditRegionCrop.execute(image, 64, 16, rect_mask(3000, 2000, *box)).result
    edited = colour_shifted_edit(window, region)
    matched = ICEditRegionStitch.execute(edited, region, "mean-std").result[0]
    outside = region.alpha[0] == 0
    assert torch.equal(matched[0][outside], image[0][outside])
    assert seam_difference(matched, image, region) * 5 <= seam_difference(
        ICEditRegionStitch.execute(edited, region, "off").result[0], image, region)


def test_a_window_without_a_ring_falls_back_to_the_feather_band_or_leaves_colours_alone():
    window = torch.full((1, 20, 30, 3), 0.5)
    full = torch.ones((20, 30))
    assert not rg.seam_ring(full).any()  # the mask covers the window: nothing to compare against
    edit = window[0] * 0.5
    assert torch.equal(rg.match_colors(edit, window[0], rg.seam_ring(full), "mean-std"), edit)
    band = torch.ones((20, 30))
    band[:, :3] = 0.5
    assert rg.seam_ring(band).sum() == 20 * 3


def test_fill_holes_and_grow_on_synthetic_masks():
    ring = torch.zeros((1, 40, 50))
    ring[:, 10:30, 10:40] = 1
    ring[:, 15:25, 20:30] = 0  # a hole, closed all round
    notch = ring.clone()
    notch[:, 15:25, 35:40] = 0
    notch[:, 18:22, 30:35] = 0  # a bay open to the outside through the right edge: not a hole
    filled = rg.fill_holes(ring)
    assert torch.equal(filled[0, 10:30, 10:40], torch.ones((20, 30))) and filled.sum() == 20 * 30
    assert torch.equal(rg.fill_holes(notch)[0, 18:22, 30:40], torch.zeros((4, 10)))  # the bay stays open
    assert torch.equal(rg.fill_holes(torch.zeros((1, 8, 8))), torch.zeros((1, 8, 8)))
    grown = rg.grow(filled, 3)
    rows, cols = torch.nonzero(grown[0].any(1)).flatten(), torch.nonzero(grown[0].any(0)).flatten()
    assert (int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])) == (7, 32, 7, 42)
    edge = torch.zeros((1, 10, 10))
    edge[:, 0, 0] = 1
    assert rg.grow(edge, 2)[0, :3, :3].sum() == 9 and rg.grow(edge, 2).sum() == 9  # clipped at the border


def test_grow_fill_and_context_shape_the_window():
    image = big_image(600, 400)
    mask = rect_mask(600, 400, 280, 180, 320, 220)  # 40 x 40
    plain, _ = ICEditRegionCrop.execute(image, 10, 0, mask).result
    assert plain.shape[1:3] == (60, 60)
    grown, _ = ICEditRegionCrop.execute(image, 10, 0, mask, grow=5).result
    assert grown.shape[1:3] == (70, 70)
    wide, _ = ICEditRegionCrop.execute(image, 10, 0, mask, context=0.5).result
    assert wide.shape[1:3] == (40 + 2 * (10 + 20), 40 + 2 * (10 + 20))
    holed = mask.clone()
    holed[:, 190:210, 290:310] = 0
    _, region = ICEditRegionCrop.execute(image, 10, 0, holed, fill_holes=True).result
    assert torch.equal(region.alpha[0, 180:220, 280:320], torch.ones((40, 40)))


def test_bad_region_settings_are_refused():
    with pytest.raises(ValueError, match="color_match = 'sepia'"):
        rg.match_colors(torch.zeros((4, 4, 3)), torch.zeros((4, 4, 3)), torch.ones((4, 4), dtype=torch.bool), "sepia")
    with pytest.raises(ValueError, match=r"context \(-0.5\) cannot be negative"):
        rg.crop_region(big_image(60, 40), None, context=-0.5)
