"""The paper's metrics: L1 by hand, CLIP / DINO on tiny random-weight transformers models saved to temporary
folders, the node, and the evaluation CLI on a generated three-sample dataset through the real server."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import folder_paths
import numpy as np
import pytest
import torch
from PIL import Image

from comfyui_icedit.headless import evaluate
from comfyui_icedit.headless.smoke_models import save_tiny_clip, save_tiny_dino
from comfyui_icedit.icedit_core import metrics
from comfyui_icedit.nodes.metrics import ICEditMetrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def metric_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models") / "metrics"
    clip, dino = save_tiny_clip(str(root / "tiny-clip")), save_tiny_dino(str(root / "tiny-dino"))
    folder_paths.add_model_folder_path("metrics", str(root))
    return clip, dino


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


def make_dataset(root, count=3):
    sessions, captions = {}, {}
    for index in range(count):
        image_id = f"{100 + index}"
        folder = root / "images" / image_id
        folder.mkdir(parents=True)
        source = Image.new("RGB", (96, 64), (40 * index, 90, 160))
        exif = Image.Exif()
        if index == 0:  # a phone photo: stored landscape, shown portrait (EXIF orientation 6)
            exif[0x0112] = 6
        source.save(folder / f"{image_id}-input.png", exif=exif)
        Image.new("RGB", (96, 64), (200, 40 * index, 60)).save(folder / f"{image_id}-output1.png")
        sessions[image_id] = [{"input": f"{image_id}-input.png", "output": f"{image_id}-output1.png",
                               "mask": f"{image_id}-mask1.png", "instruction": f"make it red {index}"}]
        captions[image_id] = {f"{image_id}-output1.png": "a red wall"}
    (root / "edit_sessions.json").write_text(json.dumps(sessions))
    (root / "local_descriptions.json").write_text(json.dumps(captions))


def test_the_evaluation_cli_runs_a_dataset_through_the_server(comfy_server, metric_models, tmp_path):
    make_dataset(tmp_path / "magicbrush")
    out = tmp_path / "eval"
    command = [sys.executable, "-m", "headless.evaluate", str(tmp_path / "magicbrush"), "--server", comfy_server.url,
               "--smoke-test", "--clip", metric_models[0], "--dino", metric_models[1], "--output", str(out),
               "--steps", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHONPATH": REPO})
    assert result.returncode == 0, result.stdout + result.stderr
    with open(out / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["id"] for row in rows] == ["100", "101", "102"]
    assert all(0 <= float(row["l1"]) <= 1 and row["clip_t"] and row["dino"] for row in rows)
    summary = (out / "summary.md").read_text()
    assert "| samples | L1 ↓ | CLIP-I ↑ | DINO ↑ | CLIP-T ↑ |" in summary and "| 3 |" in summary
    assert "SMOKE TEST" in summary
    edits = sorted(name for name in os.listdir(out / "edits") if name.endswith("_edited.png"))
    assert edits == ["100_edited.png", "101_edited.png", "102_edited.png"]
    # EXIF orientation counts as ComfyUI's LoadImage counts it: the edit of the rotated photo is portrait,
    # and the scores read that photo the same way.
    with Image.open(out / "edits" / "100_edited.png") as edited:
        assert edited.size == (64, 96)
    assert evaluate.read_image(str(tmp_path / "magicbrush" / "images" / "100" / "100-input.png")).size == (64, 96)
    # The same command again edits nothing (the ledger says all three are done) and scores the same edits.
    again = subprocess.run(command, capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHONPATH": REPO})
    assert again.returncode == 0, again.stdout + again.stderr
    assert "3 of 3 items are already done" in again.stdout and "nothing to edit" in again.stdout
    with open(out / "metrics.csv", newline="") as handle:
        assert list(csv.DictReader(handle)) == rows
