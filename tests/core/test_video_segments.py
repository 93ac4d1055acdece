"""Long clips in segments (issue 19, item 1), the file side: runner/segments.py writes each segment as exactly the
frames Get Video Components decodes from the source, at the source's rate, and joins edited segments into one mp4
with the source's sound. Real files written with PyAV into tmp_path."""
from __future__ import annotations

import math
import os

import av
import numpy as np
import pytest

from comfyui_icedit.runner import segments, video
from icedit_testing import video_clips
from icedit_testing.video_clips import decoded


def audio_samples(path) -> int:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return 0
        return sum(frame.samples for frame in container.decode(audio=0))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("clip")
    return video_clips.write_clip(str(folder / "source.mp4"), video_clips.translating_frames(frames=11, size=32),
                                  fps=12, audio=True)


def test_plan_covers_every_frame_once_and_refuses_an_empty_segment():
    assert segments.plan(11, 4) == [(0, 4), (4, 8), (8, 11)]
    assert segments.plan(8, 4) == [(0, 4), (4, 8)]
    assert segments.plan(3, 16) == [(0, 3)]
    with pytest.raises(ValueError, match="segment_frames is 0"):
        segments.plan(5, 0)


def test_segments_hold_exactly_the_source_frames_at_its_rate(source, tmp_path):
    writer = segments.SegmentSource(source)
    paths = []
    try:
        for index, (start, stop) in enumerate(segments.plan(11, 4)):
            path = str(tmp_path / f"{index}{segments.SEGMENT_EXTENSION}")
            assert writer.write(start, stop, path) == stop - start
            paths.append(path)
    finally:
        writer.close()
    assert np.array_equal(np.concatenate([decoded(path) for path in paths]), decoded(source))
    for path in paths:
        probe = video_clips.probe(path)
        assert probe["fps"] == video_clips.probe(source)["fps"] == 12 and not probe["audio"]
    assert sorted(os.listdir(tmp_path)) == ["0.avi", "1.avi", "2.avi"]  # no partial file left


def test_asking_for_an_earlier_segment_again_decodes_from_the_front(source, tmp_path):
    writer = segments.SegmentSource(source)
    try:
        writer.write(4, 8, str(tmp_path / "b.avi"))
        writer.write(0, 4, str(tmp_path / "a.avi"))  # a retry of an earlier segment
    finally:
        writer.close()
    assert np.array_equal(decoded(tmp_path / "a.avi"), decoded(source)[:4])
    assert np.array_equal(decoded(tmp_path / "b.avi"), decoded(source)[4:8])


def test_a_segment_past_the_end_is_refused_and_leaves_no_file(source, tmp_path):
    writer = segments.SegmentSource(source)
    try:
        with pytest.raises(video.VideoError, match=r"frames 9-14 were asked for, but the video stream ends after "
                                                   r"frame 11"):
            writer.write(8, 14, str(tmp_path / "late.avi"))
    finally:
        writer.close()
    assert os.listdir(tmp_path) == []


def edited_segments(source, folder, size=None) -> list[str]:
    """h264 mp4s of the source's segments, as Save Video writes an edited segment (no sound), optionally resized."""
    frames = video_clips.translating_frames(frames=11, size=32)
    paths = []
    for index, (start, stop) in enumerate(segments.plan(11, 4)):
        part = frames[start:stop]
        if size is not None and index == 1:
            part = video_clips.translating_frames(frames=stop - start, size=size)
        paths.append(video_clips.write_clip(str(folder / f"edited-{index}.mp4"), part, fps=12))
    return paths


def test_joined_segments_are_one_clip_with_the_source_rate_and_sound(source, tmp_path):
    parts = edited_segments(source, tmp_path)
    out = str(tmp_path / "joined.mp4")
    assert segments.join(parts, source, out) == 11
    probe = video_clips.probe(out)
    assert probe["frames"] == 11 and probe["fps"] == 12 and probe["audio"]
    assert np.array_equal(decoded(out), np.concatenate([decoded(part) for part in parts]))  # copied, not re-encoded
    times = probe["times"]
    assert np.allclose(np.diff(times), 1 / 12, atol=1e-3), times  # no gap or overlap at the joins
    kept = math.ceil(16000 * 11 / 12)  # Save Video keeps ceil(rate / fps * frames) samples
    assert kept <= audio_samples(out) <= kept + 2048  # AAC pads its last frames of 1024 samples


def test_a_silent_source_joins_without_sound(tmp_path):
    silent = video_clips.write_clip(str(tmp_path / "silent.mp4"), video_clips.translating_frames(frames=11, size=32))
    out = str(tmp_path / "joined.mp4")
    segments.join(edited_segments(silent, tmp_path), silent, out)
    assert not video_clips.probe(out)["audio"] and video_clips.probe(out)["frames"] == 11


def test_segments_that_differ_in_size_are_refused_naming_the_segment_and_leave_no_file(source, tmp_path):
    parts = edited_segments(source, tmp_path, size=48)
    out = str(tmp_path / "joined.mp4")
    with pytest.raises(video.VideoError, match=r"edited-1\.mp4: this edited segment is h264 48x48 .*the first one "
                                               r"h264 32x32"):
        segments.join(parts, source, out)
    assert not any(name.startswith("joined") for name in os.listdir(tmp_path))
