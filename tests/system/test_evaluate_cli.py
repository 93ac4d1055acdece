"""The evaluation CLI (`python -m comfyui_icedit.runner.evaluate`) on a generated three-sample MagicBrush-layout
dataset through the real server, scored with the tiny CLIP and DINO of the metric_models fixture."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

from PIL import Image

from comfyui_icedit.runner import evaluate



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
    command = [sys.executable, "-m", "comfyui_icedit.runner.evaluate", str(tmp_path / "magicbrush"),
               "--server", comfy_server.url, "--smoke-test", "--clip", metric_models[0], "--dino", metric_models[1],
               "--output", str(out), "--steps", "1"]  # one step: the scores of random-weight edits are not checked
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env={**os.environ})
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
    again = subprocess.run(command, capture_output=True, text=True, timeout=900, env={**os.environ})
    assert again.returncode == 0, again.stdout + again.stderr
    assert "3 of 3 items are already done" in again.stdout and "nothing to edit" in again.stdout
    with open(out / "metrics.csv", newline="") as handle:
        assert list(csv.DictReader(handle)) == rows
