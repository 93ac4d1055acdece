"""Region edits through the nodes: outside the feathered mask the output is the source bit for bit, the edit
lands where the mask was. The "sampler path" here is a test double - a known transformation of the diptych's right
panel - between the real nodes (Region Crop -> Diptych -> [edit] -> Crop -> Region Stitch)."""
from __future__ import annotations

import pytest
import torch

from comfyui_icedit.nodes.edit import ICEditCrop, ICEditDiptych
from comfyui_icedit.nodes.region import ICEditRegionCrop, ICEditRegionStitch
from icedit_testing.images import big_image, rect_mask


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


@pytest.mark.parametrize("mode", ["off", "mean-std"])
def test_a_kontext_edit_at_its_own_size_stitches_back_and_leaves_the_outside_bit_for_bit(mode):
    """Kontext returns the window at its preferred size (here 1248x832 for a 3:2 window): ICEdit Crop with the
    Kontext layout scales it back to the window, Region Stitch blends it in; colour matching still removes the
    tone offset at the seam and outside the feathered mask the photo is untouched."""
    from comfyui_icedit.icedit_core import editors
    from comfyui_icedit.nodes.edit_path import working_image

    image = big_image()
    window, region = ICEditRegionCrop.execute(image, 64, 16, rect_mask(3000, 2000, 1400, 900, 1520, 980)).result
    working = working_image(window, kontext_size=True)  # FluxKontextImageScale: not the window's size
    assert working.shape[1:3] != window.shape[1:3]
    layout = editors.whole_image_frame(editors.FLUX_KONTEXT, window, working.shape[2], working.shape[1])
    decoded = working_image(colour_shifted_edit(window, region), kontext_size=True)  # the "edit", at Kontext's size
    edited, comparison = ICEditCrop.execute(decoded, layout).result
    assert edited.shape == window.shape and comparison.shape[2] == 2 * window.shape[2]
    out = ICEditRegionStitch.execute(edited, region, mode).result[0]
    outside = region.alpha[0] == 0
    assert out.shape == image.shape and torch.equal(out[0][outside], image[0][outside])
    if mode == "mean-std":
        # Resampling to Kontext's size and back blurs the new content's edge into the seam, so the seam cannot get
        # as clean as ICEdit's (test above); colour matching must take it down to what that blur alone costs (the
        # same content without the drift, through the same round trip), which the drifted edit exceeds unmatched.
        patched, hard = window.clone(), region.alpha[:, region.top:region.bottom, region.left:region.right] == 1
        patched[hard] = torch.tensor([0.9, 0.2, 0.2])
        undrifted, _ = ICEditCrop.execute(working_image(patched, kontext_size=True), layout).result
        floor = seam_difference(ICEditRegionStitch.execute(undrifted, region, "off").result[0], image, region)
        plain = ICEditRegionStitch.execute(edited, region, "off").result[0]
        assert seam_difference(out, image, region) <= floor < seam_difference(plain, image, region)
