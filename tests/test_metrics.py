"""The paper's metrics: L1 by hand, CLIP / DINO on tiny random-weight transformers models saved to temporary
folders (the metric_models fixture), and the node."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from comfyui_icedit.icedit_core import metrics
from comfyui_icedit.nodes.metrics import ICEditMetrics



def test_l1_matches_a_hand_computation():
    target = np.zeros((2, 3, 3), dtype=np.uint8)
    target[0, 0] = [255, 0, 0]
    output = np.full((2, 3, 3), 51, dtype=np.uint8)  # 0.2 everywhere
    expected = (abs(0.2 - 1.0) + 0.2 + 0.2 + 5 * 3 * 0.2) / 18
    assert metrics.l1_distance(Image.fromarray(output), Image.fromarray(target)) == pytest.approx(expected, abs=1e-12)
    # The output is resized to the target's size first.
    assert metrics.l1_distance(Image.new("RGB", (30, 20), (51, 51, 51)), Image.new("RGB", (3, 2))) == \
        pytest.approx(0.2, abs=1e-12)


def test_clip_and_dino_scores_come_from_the_models(metric_models):
    clip = metrics.ClipScorer(metric_models[0])
    dino = metrics.DinoScorer(metric_models[1])
    red, green = Image.new("RGB", (64, 48), (220, 20, 20)), Image.new("RGB", (64, 48), (20, 220, 20))
    assert clip.image_similarity(red, red) == pytest.approx(1.0, abs=1e-5)
    assert dino.similarity(green, green) == pytest.approx(1.0, abs=1e-5)
    assert clip.image_similarity(red, green) < 0.9999
    scores = metrics.evaluate(red, source=green, target=green, target_caption="a green square",
                              output_caption="red", clip=clip, dino=dino)
    assert set(scores) == {"l1", "clip_i", "dino", "clip_t", "emu_clip_i", "emu_dino", "emu_clip_out"}
    assert all(-1.0 <= v <= 1.0 for k, v in scores.items() if k != "l1")
    assert set(metrics.evaluate(red, target=green)) == {"l1"}  # no models: nothing guessed


def test_the_metrics_node(metric_models):
    image = torch.rand((1, 40, 48, 3), generator=torch.Generator().manual_seed(0))
    scores = json.loads(ICEditMetrics.execute(image, "a photo", "", "tiny-clip", "tiny-dino", target=image,
                                              source=None).result[0])
    assert scores["l1"] == pytest.approx(0.0, abs=1e-9) and scores["clip_i"] == pytest.approx(1.0, abs=1e-5)


def test_locality_says_whether_an_edit_stayed_inside_its_mask():
    source = torch.full((1, 40, 60, 3), 0.5)
    mask = torch.zeros((1, 40, 60))
    mask[:, 10:30, 20:40] = 1
    aimed = source.clone()
    aimed[:, 10:30, 20:40] = 0.9  # changed exactly where the mask is
    spilled = aimed.clone()
    spilled[:, :, :10] = 0.1  # and a strip of the rest too
    inside_only = metrics.locality(aimed, source, mask)
    assert inside_only["change_inside_mask"] == pytest.approx(0.4, abs=0.003)
    assert inside_only["change_outside_mask"] == 0 and inside_only["changed_outside_share"] == 0
    leaky = metrics.evaluate(spilled, source=source, mask=mask)
    assert leaky["changed_outside_share"] == pytest.approx(40 * 10 / (40 * 60 - 20 * 20))
    assert leaky["change_outside_mask"] > 0.05
    with pytest.raises(ValueError, match="the mask is 30x30 but the source is 60x40"):
        metrics.locality(aimed, source, torch.ones((1, 30, 30)))
    with pytest.raises(ValueError, match="covers all of the image or none"):
        metrics.locality(aimed, source, torch.zeros((1, 40, 60)))
