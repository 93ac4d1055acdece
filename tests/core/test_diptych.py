"""icedit_core diptych geometry, crop back and the source check: pure torch / PIL, no ComfyUI."""
from __future__ import annotations


import numpy as np
import pytest
import torch
from PIL import Image

from comfyui_icedit.icedit_core import diptych as dip


def random_8bit_image(width, height, channels=3, seed=0):
    generator = np.random.default_rng(seed)
    pixels = generator.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    return pixels, torch.from_numpy(pixels.astype(np.float32) / 255.0).unsqueeze(0)


def smooth_image(width, height, channels=3):
    ys = torch.linspace(0, 1, height).view(height, 1, 1)
    xs = torch.linspace(0, 1, width).view(1, width, 1)
    planes = [0.5 * xs + 0.5 * ys, 1 - xs * ys, 0.3 + 0.4 * xs][:channels] + [torch.ones_like(xs * ys)] * max(0, channels - 3)
    return torch.cat([p.expand(height, width, 1) for p in planes], dim=-1).unsqueeze(0)


def official_construction(pixels: np.ndarray):
    """River-Zhang/ICEdit scripts/inference.py, re-stated: resize to width 512 (height floored to 8), paste the
    source into both halves, mask 255 on the right half."""
    image = Image.fromarray(pixels).convert("RGB")
    if image.size[0] != 512:
        new_height = int(image.size[1] * (512 / image.size[0])) // 8 * 8
        image = image.resize((512, new_height))
    width, height = image.size
    combined = Image.new("RGB", (width * 2, height))
    combined.paste(image, (0, 0))
    combined.paste(image, (width, 0))
    mask = np.zeros((height, width * 2), dtype=np.uint8)
    mask[:, width:] = 255
    return np.asarray(combined), mask


@pytest.mark.parametrize("size", [(1024, 768), (800, 600), (640, 400), (2000, 1000), (512, 384), (1536, 1152)])
def test_diptych_and_mask_are_byte_identical_to_the_official_construction(size):
    pixels, image = random_8bit_image(*size)
    expected_image, expected_mask = official_construction(pixels)
    diptych, mask, layout = dip.build_diptych(image, 512)
    ours = torch.round(diptych[0] * 255).to(torch.uint8).numpy()
    assert ours.shape == expected_image.shape
    assert np.array_equal(ours, expected_image)
    assert np.array_equal(torch.round(mask[0] * 255).to(torch.uint8).numpy(), expected_mask)
    assert (layout.panel_width, layout.panel_height) == (512, expected_image.shape[0])


def test_where_the_official_height_is_not_a_multiple_of_16_ours_rounds_to_16():
    # 1536x2048: exactly 682.67 rows at width 512; the official script floors to 680 (a multiple of 8), Flux's
    # 16-pixel patches need 688.
    pixels, image = random_8bit_image(1536, 2048)
    assert official_construction(pixels)[0].shape[0] == 680
    assert dip.build_diptych(image, 512)[2].panel_height == 688


def test_heights_are_multiples_of_16_closest_to_the_aspect():
    for width, height in [(1000, 752), (333, 517), (1920, 1080), (7, 3), (4000, 30)]:
        pw, ph = dip.panel_size(width, height, 512)
        assert pw == 512 and ph % 16 == 0 and ph >= 16
        assert abs(ph - height * 512 / width) <= 8 or ph == 16


@pytest.mark.parametrize("width,height,channels", [
    (333, 517, 3),   # odd sizes
    (100, 900, 3),   # tall
    (1500, 90, 3),   # wide
    (3, 2, 3),       # tiny
    (1, 1, 3),       # one pixel
    (257, 129, 1),   # grayscale
    (200, 150, 4),   # RGBA
])
def test_crop_back_restores_the_source_size(width, height, channels):
    image = smooth_image(width, height, channels)
    diptych, mask, layout = dip.build_diptych(image, 64)
    assert diptych.shape == (1, layout.panel_height, 128, 3)
    assert mask.shape == (1, layout.panel_height, 128)
    edited, comparison = dip.crop_edit(diptych, layout)
    assert edited.shape == (1, height, width, 3)
    assert comparison.shape == (1, height, 2 * width, 3)
    assert torch.equal(comparison[:, :, :width], dip.to_rgb(image))
    if width >= 64 and height >= 64:  # an unedited right panel round-trips to (almost) the source
        assert (edited - dip.to_rgb(image)).abs().mean() < 0.02


def test_left_panel_is_the_resized_source_and_right_half_is_masked():
    image = smooth_image(300, 200)
    diptych, mask, layout = dip.build_diptych(image, 128)
    assert torch.equal(diptych[:, :, :128], diptych[:, :, 128:])
    assert mask[:, :, :128].abs().sum() == 0 and torch.all(mask[:, :, 128:] == 1)


def test_float_images_are_resized_in_float():
    image = smooth_image(300, 200) * 0.9 + 0.0123  # not 8-bit values
    diptych, _, _ = dip.build_diptych(image, 128)
    assert not torch.equal(torch.round(diptych * 255) / 255, diptych)
    assert 0.0 <= diptych.min() and diptych.max() <= 1.0


def test_batch_with_several_samples_per_source_tiles_the_sources():
    images = torch.cat([smooth_image(96, 64), 1 - smooth_image(96, 64)])
    diptych, mask, layout = dip.build_diptych(images, 32)
    assert diptych.shape[0] == 2 and layout.batch_size == 2
    samples = torch.cat([diptych, diptych])  # as RepeatLatentBatch orders them: s0 s1 s0 s1
    edited, comparison = dip.crop_edit(samples, layout)
    assert edited.shape == (4, 64, 96, 3)
    assert torch.equal(comparison[2, :, :96], images[0]) and torch.equal(comparison[3, :, :96], images[1])


def test_a_layout_from_another_image_is_refused():
    _, _, layout = dip.build_diptych(smooth_image(300, 200), 64)
    other, _, _ = dip.build_diptych(smooth_image(200, 300), 64)
    with pytest.raises(ValueError, match=r"layout describes .*must come from the ICEditDiptych"):
        dip.crop_edit(other, layout)


def test_a_batch_that_does_not_fit_the_layout_is_refused():
    diptych, _, layout = dip.build_diptych(torch.cat([smooth_image(64, 64)] * 2), 32)
    with pytest.raises(ValueError, match="multiple of the number of sources"):
        dip.crop_edit(torch.cat([diptych, diptych[:1]]), layout)


def test_mask_of_another_size_is_refused():
    diptych, mask, _ = dip.build_diptych(smooth_image(300, 200), 64)
    with pytest.raises(ValueError, match=r"MASK is 64x\d+ but the diptych IMAGE is 128x"):
        dip.check_mask_matches(diptych, mask[:, :, :64])
    with pytest.raises(ValueError, match="batch of 3"):
        dip.check_mask_matches(diptych, mask.repeat(3, 1, 1))


def test_bad_panel_width_and_channels_are_refused():
    with pytest.raises(ValueError, match="multiple of 16"):
        dip.panel_size(100, 100, 500)
    with pytest.raises(ValueError, match="5 channels"):
        dip.build_diptych(torch.zeros(1, 8, 8, 5))


def test_apply_layout_lines_a_map_up_with_the_diptych():
    pixels, image = random_8bit_image(300, 200)
    diptych, _, layout = dip.build_diptych(image, 64)
    assert torch.equal(dip.apply_layout(image, layout), diptych)  # the source itself lands exactly on it
    blank = dip.apply_layout(image, layout, dip.RIGHT_BLANK)
    assert torch.equal(blank[:, :, :64], diptych[:, :, :64]) and blank[:, :, 64:].abs().sum() == 0
    half = dip.apply_layout(smooth_image(150, 100, 1), layout)  # another resolution, same aspect, gray
    assert half.shape == diptych.shape


def test_apply_layout_refuses_another_aspect():
    _, _, layout = dip.build_diptych(smooth_image(300, 200), 64)
    with pytest.raises(ValueError, match=r"200x300 but the layout's source is 300x200"):
        dip.apply_layout(smooth_image(200, 300), layout)


def blocky_picture(width, height, seed):
    """A picture with structure at every scale a 16x16 thumbnail sees: 8x6 random colour blocks."""
    blocks = torch.rand((1, 3, 6, 8), generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(blocks, size=(height, width), mode="nearest").movedim(1, -1)


def vae_like(diptych, seed=0):
    """What a faithful decode looks like: a little blur, noise and colour drift."""
    blurred = torch.nn.functional.avg_pool2d(diptych.movedim(-1, 1), 3, stride=1, padding=1).movedim(1, -1)
    noise = 0.03 * torch.randn(diptych.shape, generator=torch.Generator().manual_seed(seed))
    return (blurred + noise + 0.02).clamp(0, 1)


def test_crop_refuses_the_layout_of_another_picture_of_the_same_size():
    _, _, layout = dip.build_diptych(blocky_picture(300, 200, seed=1), 64)
    own, _, _ = dip.build_diptych(blocky_picture(300, 200, seed=1), 64)
    other, _, _ = dip.build_diptych(blocky_picture(300, 200, seed=2), 64)
    dip.check_source_matches(vae_like(own), layout)  # a faithful decode passes
    with pytest.raises(ValueError, match=r"left panel does not show the source .*another picture of the same size"):
        dip.check_source_matches(vae_like(other), layout)
    assert layout.fingerprint.shape == (1, dip.FINGERPRINT_SIZE, dip.FINGERPRINT_SIZE, 3)


def test_the_source_check_covers_every_sample_of_a_batch():
    images = torch.cat([blocky_picture(96, 64, seed=3), blocky_picture(96, 64, seed=4)])
    diptych, _, layout = dip.build_diptych(images, 32)
    dip.check_source_matches(torch.cat([diptych, diptych]), layout)  # s0 s1 s0 s1
    with pytest.raises(ValueError, match="does not show the source"):
        dip.check_source_matches(torch.cat([diptych, diptych.flip(0)]), layout)


def test_the_comparison_of_a_huge_source_is_scaled_down_and_the_edit_is_not():
    image = smooth_image(3000, 2000)
    diptych, _, layout = dip.build_diptych(image, 64)
    edited, comparison = dip.crop_edit(diptych, layout)
    assert edited.shape == (1, 2000, 3000, 3)
    width, height = dip.comparison_size(3000, 2000)
    assert comparison.shape == (1, height, 2 * width, 3) and width * height <= dip.COMPARISON_MAX_PIXELS
    assert (width, height) == (2508, 1672)  # the source's aspect
    assert (comparison[:, :, :width] - dip.resize_images(image, width, height)).abs().max() < 1e-6


def test_the_edit_is_written_band_by_band_exactly_as_one_pil_resize_of_each_plane():
    # 1100 rows: two full bands of ROWS_PER_SLAB and a short one; every value must land where one resize puts it.
    panel = torch.rand((1, 40, 30, 3), generator=torch.Generator().manual_seed(3))
    width, height = 901, 1100
    resized = dip._resize_float_planes(panel[0], width, height)
    for channel in range(3):
        plane = Image.fromarray(np.ascontiguousarray(panel[0, ..., channel].numpy()), "F")
        expected = np.clip(np.asarray(plane.resize((width, height), Image.BICUBIC)), 0.0, 1.0)
        assert np.array_equal(resized[..., channel].numpy(), expected)
