"""Long clips through the runner (issue 19, items 1 and 4): --video with --segment-frames edits a clip a segment
at a time on the real server (smoke models), writes a ledger line per segment, carries the noise from segment to
segment, joins the segments into one mp4 with the source's frames, rate and sound (with FLUX.1 Kontext's video
workflow), and a run of the ICEdit video workflow stopped mid-clip goes on from the first unfinished segment and
gives the same clip."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from comfyui_icedit.runner.segmented_clip import SEGMENTS_FOLDER
from icedit_testing import video_clips
from icedit_testing.video_clips import decoded
from icedit_testing.server_runs import default_sigint, run_main_job

FPS = 12


def ledger(output) -> list[dict]:
    path = os.path.join(output, "results.jsonl")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def edit_in_segments(server, clip, output, segment_frames, *extra):
    return ["--server", server.url, "--smoke-test", "--video", clip, "make it snowy", "--output", output,
            "--steps", "1", "--segment-frames", segment_frames, *extra]


def test_a_run_stopped_mid_clip_goes_on_from_the_first_unfinished_segment(comfy_server, tmp_path):
    clip = video_clips.write_clip(str(tmp_path / "clip.mp4"), video_clips.translating_frames(4), fps=FPS)
    straight = tmp_path / "straight"
    result = run_main_job(*edit_in_segments(comfy_server, clip, straight, 1))
    assert result.returncode == 0, result.stdout + result.stderr

    stopped = tmp_path / "stopped"
    runner = subprocess.Popen([sys.executable, "-m", "comfyui_icedit.runner.run_icedit",
                               *map(str, edit_in_segments(comfy_server, clip, stopped, 1, "--quiet"))],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 300
        while not any(line["status"] == "partial" for line in ledger(stopped)) and time.monotonic() < deadline:
            assert runner.poll() is None, runner.stdout.read()
            time.sleep(0.05)
        os.kill(runner.pid, signal.SIGINT)
        runner.wait(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
    done = [line["segment"] for line in ledger(stopped) if line["status"] == "partial"]
    assert done and done[-1] < 4 and not os.path.exists(stopped / "clip_edited.mp4"), ledger(stopped)

    resumed = run_main_job(*edit_in_segments(comfy_server, clip, stopped, 1))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"segments 1-{done[-1]} of 4 were edited by an earlier run; going on from segment {done[-1] + 1}" \
        in resumed.stdout
    assert [line["segment"] for line in ledger(stopped) if line["status"] == "partial"] == [1, 2, 3, 4]
    assert np.array_equal(decoded(stopped / "clip_edited.mp4"), decoded(straight / "clip_edited.mp4"))


def test_kontext_video_edits_a_clip_in_segments_on_the_smoke_kontext_model(comfy_server, tmp_path):
    """workflows/icedit_kontext_video.json through the runner: FLUX.1 Kontext per frame (the smoke Kontext model)
    with flow noise carried across three segments, a ledger line per segment, joined with the source's frames,
    rate and sound; the segment files go once the clip is joined."""
    clip = video_clips.write_clip(str(tmp_path / "pan.mp4"), video_clips.translating_frames(5), fps=FPS, audio=True)
    output = tmp_path / "out"
    result = run_main_job(*edit_in_segments(comfy_server, clip, output, 2, "--workflow", "kontext_video"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 frames, edited in 3 segments of up to 2 frames" in result.stdout
    made = video_clips.probe(str(output / "pan_edited.mp4"))
    assert (made["frames"], made["fps"], made["width"], made["audio"]) == (5, FPS, 64, True)
    lines = ledger(output)
    assert [(line["status"], line.get("segment"), line.get("frames")) for line in lines] == [
        ("partial", 1, [0, 2]), ("partial", 2, [2, 4]), ("partial", 3, [4, 5]), ("ok", None, None)]
    done = lines[-1]
    assert done["workflow"] == "kontext_video" and done["outputs"] == ["pan_edited.mp4"]
    assert done["report"][0] == "5 frames edited in 3 segments of up to 2 frames, joined"
    for number, frames in ((1, "1-2"), (2, "3-4"), (3, "5-5")):  # each segment's noise went on from the last
        assert any(text.startswith(f"segment {number}: flow noise for") and f"(frames {frames} of a clip in "
                   "segments)" in text for text in done["report"]), done["report"]
    assert any(text.startswith("segment 2: Flicker over 2 frames") for text in done["report"]), done["report"]
    assert not os.path.exists(output / SEGMENTS_FOLDER)
