"""The video workflow on a real ComfyUI server with the smoke-test models: LoadVideo → the ICEdit path over every
frame (flow noise, chunked sampling) → CreateVideo → SaveVideo gives an mp4 with the source's frame count, frame
rate and sound; the runner's --video and --flicker commands; and the flicker of independent against flow noise on
the random-weight model (a plumbing check only: random weights edit nothing, so the numbers say nothing about
quality)."""
from __future__ import annotations

import json
import os
import re

import pytest

from comfyui_icedit.runner import prompt as prompts
from icedit_testing.server_runs import load_workflow, run_main_job, upload

from icedit_testing import video_clips

FRAMES, FPS = 6, 12  # six frames: the smoke Flux model is full width, so every diptych-step costs
FLICKER = re.compile(r"Flicker over (\d+) frames: edited ([\d.]+), source ([\d.]+)")


def run_video(server, clip, instruction, noise="flow", frames_per_batch=4, steps=1):
    api = prompts.smoke_prompt(prompts.to_api(load_workflow("icedit_video.json"), server.object_info()))
    prompt = prompts.with_inputs(api, video=upload(server, clip), instruction=instruction, seed=3, steps=steps,
                                 panel_width=64, video_noise=noise, frames_per_batch=frames_per_batch)
    entry = server.run(prompt, timeout=600)
    saved = [item for output in entry["outputs"].values() for item in output.get("images", [])]
    texts = [text for output in entry["outputs"].values() for text in output.get("text", [])]
    (video,) = [item for item in saved if item["filename"].startswith("edited")]
    path = os.path.join(server.process.workdir, "output", video["subfolder"], video["filename"])
    return path, texts


def flicker_numbers(texts) -> tuple[float, float]:
    (match,) = [m for m in map(FLICKER.search, texts) if m]
    assert int(match.group(1)) == FRAMES
    return float(match.group(2)), float(match.group(3))


@pytest.fixture(scope="module")
def clip_with_sound(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("clips") / "translating.mp4")
    return video_clips.write_clip(path, video_clips.translating_frames(FRAMES), fps=FPS, audio=True)


def test_the_video_workflow_gives_an_mp4_with_the_sources_frames_fps_and_sound(comfy_server, clip_with_sound):
    path, texts = run_video(comfy_server, clip_with_sound, "make it snowy (video workflow)")
    assert path.endswith(".mp4")
    made = video_clips.probe(path)
    assert (made["frames"], made["fps"], made["width"], made["height"], made["audio"]) == (FRAMES, FPS, 64, 64, True)
    assert any(text.startswith(f"flow noise for {FRAMES} frame(s)") for text in texts), texts
    edited, source = flicker_numbers(texts)
    assert edited > 0 and source > 0


def test_a_clip_without_sound_gives_a_video_without_sound(comfy_server, tmp_path):
    clip = video_clips.write_clip(str(tmp_path / "silent.mp4"), video_clips.translating_frames(4), fps=8)
    path, _ = run_video(comfy_server, clip, "make it snowy (silent clip)", frames_per_batch=3)
    made = video_clips.probe(path)
    assert (made["frames"], made["fps"], made["audio"]) == (4, 8, False)


def test_a_one_frame_clip_is_edited_and_saved_as_a_one_frame_video(comfy_server, tmp_path):
    clip = video_clips.write_clip(str(tmp_path / "still.mp4"), video_clips.translating_frames(1), fps=FPS)
    path, texts = run_video(comfy_server, clip, "make it snowy (one frame)")
    assert video_clips.probe(path)["frames"] == 1
    assert any("nothing to carry" in text for text in texts) and any("nothing to measure" in t for t in texts)


def test_flicker_of_independent_and_flow_noise_on_the_smoke_model(comfy_server, clip_with_sound, capsys):
    """Plumbing: both noises reach the sampler and the flicker node measures both runs against the same source.
    Random weights: the ratio printed says nothing about what real weights do."""
    numbers = {noise: flicker_numbers(run_video(comfy_server, clip_with_sound, "make it snowy (flicker)", noise)[1])
               for noise in ("independent", "flow")}
    assert numbers["independent"][1] == numbers["flow"][1]  # the same source number: the same source clip
    assert numbers["independent"][0] != numbers["flow"][0]  # the noise reached the sampler
    with capsys.disabled():
        print(f"\n[smoke model, random weights: plumbing only] flicker independent {numbers['independent'][0]:.2f}, "
              f"flow {numbers['flow'][0]:.2f}, source {numbers['flow'][1]:.2f}; independent / flow = "
              f"{numbers['independent'][0] / numbers['flow'][0]:.2f}")


def test_the_main_job_edits_a_clip_and_measures_its_flicker(comfy_server, tmp_path):
    uneven = [0.05, 0.1] * (FRAMES // 2)  # a variable frame rate
    clip = video_clips.write_clip(str(tmp_path / "uneven.mp4"), video_clips.translating_frames(FRAMES),
                                  frame_times=uneven, audio=False)
    output = tmp_path / "out"
    result = run_main_job("--server", comfy_server.url, "--smoke-test", "--video", clip, "make it snowy",
                          "--output", output, "--steps", "1", "--frames-per-batch", "4")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{FRAMES} frames of 64x64" in result.stdout and "variable frame rate" in result.stdout
    made = video_clips.probe(str(output / "uneven_edited.mp4"))
    assert made["frames"] == FRAMES
    assert abs(made["fps"] - FRAMES / sum(uneven)) < 0.6  # the average rate, as Get Video Components reports it
    assert f"Flicker over {FRAMES} frames" in result.stdout
    measured = run_main_job("--flicker", clip, output / "uneven_edited.mp4")
    assert measured.returncode == 0, measured.stdout + measured.stderr
    assert measured.stdout.startswith(f"Flicker over {FRAMES} frames: edited ")


def test_the_runner_refuses_a_video_for_an_image_workflow_and_an_image_for_video(comfy_server, tmp_path):
    video_clips.write_clip(str(tmp_path / "clip.mp4"), video_clips.translating_frames(2))
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "still.png")
    (tmp_path / "empty.mp4").write_bytes(b"not a video at all")
    manifest = tmp_path / "edits.jsonl"
    manifest.write_text("\n".join(json.dumps(row) for row in (
        {"image": "clip.mp4", "instruction": "make it red", "workflow": "basic"},
        {"image": "still.png", "instruction": "make it red", "workflow": "video"},
        {"image": "empty.mp4", "instruction": "make it red"},
    )) + "\n")
    result = run_main_job("--server", comfy_server.url, "--smoke-test", "--batch", manifest,
                          "--output", tmp_path / "out")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "clip.mp4 is a video; the basic workflow edits images" in result.stdout
    assert "the video workflow edits video files" in result.stdout and "still.png is not one" in result.stdout
    assert "empty.mp4: not a video PyAV can read" in result.stdout
    assert "nothing to edit" in result.stdout
    missing = run_main_job("--flicker", tmp_path / "clip.mp4", tmp_path / "nothing.mp4")
    assert missing.returncode == 2 and "no such file" in missing.stderr
