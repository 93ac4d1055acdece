"""Region crop and stitch in icedit_core: windows, feathers, colour matching, masks; no ComfyUI."""
from __future__ import annotations

import pytest
import torch

from comfyui_icedit.icedit_core import region as rg
from icedit_testing.images import big_image, rect_mask


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


def test_bad_region_settings_are_refused():
    with pytest.raises(ValueError, match="color_match = 'sepia'"):
        rg.match_colors(torch.zeros((4, 4, 3)), torch.zeros((4, 4, 3)), torch.ones((4, 4), dtype=torch.bool), "sepia")
    with pytest.raises(ValueError, match=r"context \(-0.5\) cannot be negative"):
        rg.crop_region(big_image(60, 40), None, context=-0.5)


@pytest.mark.parametrize("reach", [1, 2, 5, 16, 40])
def test_the_dilation_equals_max_pooling_over_the_square(reach):
    """The windowed sums that dilate masks give exactly what max_pool2d over the (2 * reach + 1)² square gives,
    at borders and in corners too (max_pool2d was O(reach²) per pixel: a 129-pixel square took minutes at 3000x2000)."""
    masks = (torch.rand((3, 1, 90, 70), generator=torch.Generator().manual_seed(reach)) > 0.995).float()
    masks[0, 0, 0, 0] = masks[1, 0, -1, -1] = 1
    expected = torch.nn.functional.max_pool2d(masks, 2 * reach + 1, stride=1, padding=reach)
    assert torch.equal(rg._dilate(masks, reach), expected)
