"""Bad clips for --video (issue 19, item 5): each is refused up front with one line naming the file, the value and
what to do, or is edited with a note saying what happens. Real files written with PyAV into tmp_path
(icedit_testing/bad_clips.py); `decode_like_get_video_components` is ComfyUI's own decoding, copied, and shows
each refused clip really fails there (or would be saved wrongly)."""
from __future__ import annotations

import re

import av
import pytest

from comfyui_icedit.runner import engine, items, run_icedit, video
from icedit_testing import bad_clips, video_clips


def refusal(path) -> str:
    """inspect's VideoError for `path`, checked to be one line that starts with the file's name."""
    with pytest.raises(video.VideoError) as refused:
        video.inspect(str(path))
    message = str(refused.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message


def fps_in(message: str, before: str) -> float:
    """The number right after `before` in a message ("-r 11.99" -> 11.99)."""
    return float(re.search(re.escape(before) + r"([0-9.]+)", message).group(1))


# -- 1. frames that change size mid-stream ---------------------------------------------------------------------------
@pytest.mark.parametrize("codec, extension, first_run", [("h264", "mp4", 3), ("mjpeg", "avi", 3), ("mpeg4", "mkv", 5)])
def test_a_clip_whose_frames_change_size_is_refused_naming_both_sizes_and_the_frame(tmp_path, codec, extension,
                                                                                    first_run):
    path = bad_clips.write_size_changing_clip(tmp_path / f"resized.{extension}",
                                              [(64, 48)] * first_run + [(80, 48)] * 3, codec=codec)
    with pytest.raises(ValueError, match="same shape"):  # Get Video Components' torch.stack fails the same way
        bad_clips.decode_like_get_video_components(path)
    message = refusal(path)
    assert f"at frame {first_run}, from 64x48 to 80x48" in message and "scale=64:48" in message


def test_the_flicker_of_a_clip_that_changes_size_is_the_same_refusal(tmp_path):
    path = bad_clips.write_size_changing_clip(tmp_path / "resized.mp4", [(64, 48)] * 3 + [(80, 48)] * 3)
    with pytest.raises(video.VideoError, match=re.escape(f"{path}: its frames change size at frame 3")):
        video.read_frames(path)


def test_an_h264_clip_is_checked_for_size_changes_by_decoding_its_keyframes_only(tmp_path, monkeypatch):
    """A size can change only where a new sequence header starts, at a keyframe: inspect decodes those alone (a
    few of 24 frames here) and all frames only when they differ."""
    path = video_clips.write_clip(str(tmp_path / "steady.mp4"), video_clips.translating_frames(frames=24, size=32))
    with av.open(path) as container:
        keyframes = sum(packet.is_keyframe for packet in container.demux(video=0))
    assert 1 <= keyframes < 12
    decoded = []
    original = video._decoded_sizes

    def counting(clip, keyframes_only):
        sizes = original(clip, keyframes_only)
        decoded.append((keyframes_only, len(sizes)))
        return sizes
    monkeypatch.setattr(video, "_decoded_sizes", counting)
    info = video.inspect(path)
    assert (info.frames, info.width, info.height) == (24, 32, 32)
    assert decoded == [(True, keyframes)]


def test_a_codec_that_may_change_size_between_keyframes_is_decoded_whole(tmp_path, monkeypatch):
    path = bad_clips.write_size_changing_clip(tmp_path / "steady.avi", [(64, 48)] * 4, codec="mjpeg")
    assert "mjpeg" not in video.SIZE_CHANGES_AT_KEYFRAMES
    calls = []
    original = video._decoded_sizes
    monkeypatch.setattr(video, "_decoded_sizes", lambda clip, keyframes_only: calls.append(keyframes_only)
                        or original(clip, keyframes_only))
    assert video.inspect(path).frames == 4 and calls == [False]


# -- 2. frame rates of 0 and 10 000 fps ------------------------------------------------------------------------------
def test_a_header_without_a_rate_takes_the_timestamps_rate_and_comfyui_uses_the_same(tmp_path):
    """A DefaultDuration of 0: FFmpeg estimates the average rate from the timestamps, and that is the rate Get Video
    Components passes on, so the edit keeps the clip's speed."""
    path = bad_clips.write_mkv_default_duration(tmp_path / "no_rate.mkv", 0, fps=12)
    info = video.inspect(path)
    assert info.fps == pytest.approx(12, rel=0.02) and info.notes() == []
    assert bad_clips.decode_like_get_video_components(path)[1] == pytest.approx(info.fps)


def test_a_10000_fps_header_on_a_12_fps_clip_is_refused_with_the_timestamps_rate_to_use(tmp_path):
    path = bad_clips.write_mkv_default_duration(tmp_path / "fast_header.mkv", 100_000, fps=12)  # 0.1 ms a frame
    assert bad_clips.decode_like_get_video_components(path)[1] == 10000  # what Create Video would be given
    message = refusal(path)
    assert "its header says 10000 fps but its frames are 83" in message
    assert fps_in(message, "ffmpeg -r ") == pytest.approx(12, rel=0.02)


def test_a_clip_whose_header_and_timestamps_both_say_10000_fps_is_refused(tmp_path):
    path = video_clips.write_clip(str(tmp_path / "fast.mp4"), video_clips.translating_frames(frames=6, size=32),
                                  fps=10000)
    message = refusal(path)
    assert "its header says 10000 fps and its frames are 0.1 ms apart (10000 fps)" in message
    assert "1-240 fps" in message and "the rate it was shot at" in message


def test_a_clip_with_no_rate_anywhere_is_refused_rather_than_saved_at_1_fps(tmp_path):
    path = bad_clips.write_mp4_without_any_rate(tmp_path / "timeless.mp4", frames=6)
    assert bad_clips.decode_like_get_video_components(path) == (6, 1.0)  # ComfyUI's fallback: 1 fps
    message = refusal(path)
    assert "its header gives no frame rate and all its frames have one timestamp" in message


def test_a_sane_header_that_disagrees_with_the_timestamps_is_edited_with_a_note_on_its_speed(tmp_path):
    path = bad_clips.write_mkv_default_duration(tmp_path / "nominal.mkv", 33_333_333, fps=12)  # says 30 fps
    info = video.inspect(path)
    assert info.fps == pytest.approx(30, rel=1e-3) and info.timestamp_fps == pytest.approx(12, rel=0.02)
    [note] = info.notes()
    assert "its header says 30 fps" in note and "plays 2.5x as fast" in note
    assert fps_in(note, "ffmpeg -r ") == pytest.approx(12, rel=0.02)


@pytest.mark.parametrize("header, timestamps, frames, refused", [
    (1.0, 1.0, 10, False), (240.0, 240.0, 10, False),   # the bounds themselves
    (0.5, 0.5, 10, True), (241.0, 241.0, 10, True),
    (None, 1.0, 10, False),                             # no header: ComfyUI's 1 fps, and the frames agree
    (None, 12.0, 10, True),                             # no header: saved at 1 fps, frames 1/12 s apart
    (None, None, 1, False),                             # one frame: its rate changes nothing
    (24.0, 5000.0, 10, False),                          # a sane header is what the edit is saved at
])
def test_the_rate_bounds(header, timestamps, frames, refused):
    problem = video.frame_rate_problem("clip.mkv", header, timestamps, frames)
    assert (problem is not None) == refused, problem
    if problem and header is None:
        assert "no frame rate" in problem and "at 1 fps" in problem and "ffmpeg -r 12 -i clip.mkv" in problem


# -- 3. sound without a picture --------------------------------------------------------------------------------------
def test_an_mp4_with_only_an_audio_track_says_no_video_stream(tmp_path):
    path = bad_clips.write_audio_only(tmp_path / "voice_memo.mp4")
    assert refusal(path) == f"{path}: no video stream in the file"
    with pytest.raises(items.ItemError, match=re.escape(f"{path}: no video stream")):
        items.upload_bytes(path)


# -- 4. a damaged mp4 index (moov) -----------------------------------------------------------------------------------
def damaged(tmp_path, kind: str, box: bytes, at: int, replacement: bytes) -> str:
    good = bad_clips.write_good_mp4(tmp_path / "good.mp4")
    data = open(good, "rb").read()
    start, _ = bad_clips.track_box(data, kind, box)
    return bad_clips.damaged_copy(good, tmp_path / f"{kind}_{box.decode()}.mp4", start + at, replacement)


def test_an_mp4_cut_short_before_its_moov_is_refused_in_one_line(tmp_path):
    good = bad_clips.write_good_mp4(tmp_path / "good.mp4")
    data = open(good, "rb").read()
    [(moov, _)] = bad_clips.mp4_boxes(data, b"moov")
    assert moov > len(data) // 2  # PyAV writes the index last: a cut-short download loses it
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[:moov])
    message = refusal(path)
    assert "not a video PyAV can read (Invalid data found when processing input)" in message
    assert "cut short or damaged" in message


def test_an_mp4_whose_video_codec_entry_is_overwritten_has_no_decoder(tmp_path):
    path = damaged(tmp_path, "vide", b"stsd", 20, bytes(4))  # the sample entry's 'avc1'
    with pytest.raises(Exception, match="Decoder not found"):
        bad_clips.decode_like_get_video_components(path)
    assert "PyAV has no decoder for its video stream" in refusal(path)


def test_an_mp4_whose_audio_chunk_offsets_are_zeroed_is_refused_for_its_sound(tmp_path):
    """Get Video Components decodes every audio track too: a broken one fails there before any edit."""
    path = damaged(tmp_path, "soun", b"stco", 16, bytes(8))  # the first two chunks now start at byte 0
    with pytest.raises(Exception, match="Invalid data"):
        bad_clips.decode_like_get_video_components(path)
    message = refusal(path)
    assert "its audio track #1 does not decode" in message and f"ffmpeg -i {path} -an -c copy" in message


def test_every_damage_to_the_moov_that_comfyui_fails_on_is_refused_and_nothing_raises_else(tmp_path):
    """8 bytes of 0xFF every 48 bytes through the moov box: inspect returns or raises a one-line VideoError naming
    the file (never another exception), and it refuses every copy that Get Video Components fails on or finds no
    frame in."""
    good = bad_clips.write_good_mp4(tmp_path / "good.mp4")
    [(moov, size)] = bad_clips.mp4_boxes(open(good, "rb").read(), b"moov")
    failing = 0
    for offset in range(moov + 8, moov + size, 48):
        path = bad_clips.damaged_copy(good, tmp_path / "damaged.mp4", offset, b"\xff" * 8)
        try:
            fails_in_comfyui = bad_clips.decode_like_get_video_components(path)[0] == 0
        except Exception:  # noqa: BLE001 - any failure there is one the runner must catch first
            fails_in_comfyui = True
        try:
            video.inspect(path)
            refused = False
        except video.VideoError as error:
            assert str(error).startswith(f"{path}: ") and "\n" not in str(error), (offset - moov, str(error))
            refused = True
        assert refused or not fails_in_comfyui, f"moov + {offset - moov}: Get Video Components fails, inspect passed"
        failing += fails_in_comfyui
    assert failing >= 5, failing  # the sweep does reach damage that matters


# -- what --video prints ---------------------------------------------------------------------------------------------
def test_video_names_the_option_and_the_file_and_plans_no_edit(tmp_path):
    bad = bad_clips.write_size_changing_clip(tmp_path / "resized.mp4", [(64, 48)] * 3 + [(80, 48)] * 3)
    good = video_clips.write_clip(str(tmp_path / "fine.mp4"), video_clips.translating_frames(frames=4, size=32))
    work = run_icedit.describe_clips(items.from_edit_pairs([(bad, "snow"), (good, "snow")], "--video",
                                                           items.VIDEO_WORKFLOW))
    assert work[0].error.startswith(f"--video #1: {bad}: its frames change size at frame 3") and work[1].error is None
    (tmp_path / "out").mkdir()
    config = engine.RunConfig(output=str(tmp_path / "out"), seed=7)
    catalog = engine.Workflows(config.workflow)
    for item in work:
        engine._assign_workflow(item, config, catalog)
    summary, lines = engine.Summary(total=2), []
    todo = engine._plan(config, work, items.Ledger(str(tmp_path / "out")), summary, lines.append, True, catalog)
    assert [job.id for job in todo] == ["fine"] and summary.failed_ids == ["resized"]
