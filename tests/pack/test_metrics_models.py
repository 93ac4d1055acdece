"""The paper's metrics on tiny random-weight transformers CLIP / DINO models saved to temporary folders (the
metric_models fixture), and the ICEdit Metrics node."""
from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from comfyui_icedit.icedit_core import metrics
from comfyui_icedit.nodes.metrics import ICEditMetrics


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
