"""Video files for the runner: checking a clip before it is uploaded (frames, frame rate), and the flicker of an
edited clip against its source, for files (`scripts/icedit --flicker SOURCE EDITED`). PyAV, ComfyUI's own video
dependency; the flicker maths is the pack's icedit_core.flicker (torch + OpenCV's optical flow).
"""
from __future__ import annotations

import dataclasses
import os

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi")
# Frame times that differ from their mean by more than this share make a clip "variable frame rate".
FRAME_TIME_TOLERANCE = 0.05
# The rates an edit is saved at. 1 fps is Create Video's own lowest; 240 fps the fastest that phones and action
# cameras record (slow motion). A rate outside is a broken header or broken timestamps (10 000 fps on a clip shot
# at 30), and Create Video would write the edit at it.
MIN_FPS, MAX_FPS = 1.0, 240.0
# A header rate this far from the timestamps' changes how fast the edit plays (the header's is the one kept).
RATE_MISMATCH = 0.10
# Codecs whose frame size can change only at a keyframe (a new size comes with a new sequence header, which comes
# with a keyframe), so decoding the keyframes alone finds every size. VP9 and AV1 may also scale inter frames:
# they, and every codec not named, are decoded whole (intra-only codecs, mjpeg and the like, cost the same either way).
SIZE_CHANGES_AT_KEYFRAMES = frozenset({"h264", "hevc", "mpeg1video", "mpeg2video", "mpeg4", "vp8"})
# What Get Video Components gives Create Video for a stream without an average rate.
COMFY_DEFAULT_FPS = 1.0


class VideoError(ValueError):
    """A clip that cannot be edited; names the file."""


def is_video(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


@dataclasses.dataclass(frozen=True)
class ClipInfo:
    frames: int
    fps: float  # the average rate, what ComfyUI's GetVideoComponents reports
    width: int
    height: int
    audio: bool
    variable_frame_rate: bool
    timestamp_fps: float | None = None  # 1 / the typical time between frames; None for one frame or one time

    def describe(self) -> str:
        return (f"{self.frames} frames of {self.width}x{self.height} at {self.fps:.3g} fps"
                + (", with sound" if self.audio else ", no sound"))

    def notes(self) -> list[str]:
        notes = []
        if self.frames == 1:
            notes.append("the clip has a single frame: it is edited like an image and saved as a one-frame video")
        if self.variable_frame_rate:
            notes.append(f"the clip has a variable frame rate: ComfyUI's Get Video Components gives every frame and "
                         f"the average rate ({self.fps:.3g} fps), so the edited clip keeps every frame and about the "
                         "length but shows the frames at even times")
        elif _rates_differ(self.fps, self.timestamp_fps):
            notes.append(f"its header says {_fps(self.fps)} fps but its frames are {_spacing(self.timestamp_fps)}: "
                         f"the edit is saved at the header's {_fps(self.fps)} fps, so it plays "
                         f"{self.fps / self.timestamp_fps:.3g}x as fast as the source (to keep its speed, give it "
                         f"the timestamps' rate first: ffmpeg -r {_fps(self.timestamp_fps)} -i CLIP fixed.mp4)")
        return notes


def inspect(path: str) -> ClipInfo:
    """What the clip holds, from its packets' timestamps, its audio (decoded, as Get Video Components does) and its
    keyframes' sizes (every frame's only for codecs whose size may change between keyframes). VideoError, naming
    the file, for what Get Video Components or Create Video would fail on: not a video, no video stream, no frame
    that decodes, a track that does not decode, frames that change size, a frame rate outside 1-240 fps."""
    import av

    try:
        with _open(path) as container:
            stream = _video_stream(path, container)
            codec, header_fps = stream.codec_context.name, _header_fps(stream)
            times = _frame_times_checking_audio(path, container, stream)
            audio = bool(container.streams.audio)
        sizes = _frame_sizes(path, whole=codec not in SIZE_CHANGES_AT_KEYFRAMES)
    except av.error.FFmpegError as error:
        raise VideoError(f"{path}: not a video PyAV can read ({_reason(error)}) - the file may be cut short or "
                         "damaged: export or download it again") from None
    if not times or not sizes:
        raise VideoError(f"{path}: the video stream has no frame that decodes")
    timestamp_fps, variable = _timestamp_rate(times)
    problem = frame_rate_problem(path, header_fps, timestamp_fps, len(times))
    if problem:
        raise VideoError(problem)
    width, height = sizes[0]
    return ClipInfo(frames=len(times), fps=header_fps or COMFY_DEFAULT_FPS, width=width, height=height,
                    audio=audio, variable_frame_rate=variable, timestamp_fps=timestamp_fps)


def frame_rate_problem(path: str, header_fps: float | None, timestamp_fps: float | None, frames: int) -> str | None:
    """Why the rate the edit would be saved at is wrong (None when it is fine). Get Video Components gives Create
    Video the stream's average rate, or 1 fps without one, whatever the timestamps say; FFmpeg already fills a
    missing average from the timestamps where it can, so a missing one means they gave none either."""
    saved = header_fps or COMFY_DEFAULT_FPS
    timestamps_agree = timestamp_fps is not None and not _rates_differ(saved, timestamp_fps)
    if _sane(saved) and (header_fps or frames == 1 or timestamps_agree):
        return None
    said = f"its header says {_fps(header_fps)} fps" if header_fps else "its header gives no frame rate"
    if timestamp_fps is None:
        timing = "all its frames have one timestamp" if frames > 1 else "it has a single frame"
    else:
        timing = f"its frames are {_spacing(timestamp_fps)}"
    if timestamp_fps is not None and _sane(timestamp_fps):
        return (f"{path}: {said} but {timing}, and ComfyUI's Get Video Components would save the edit at {_fps(saved)} "
                f"fps - give it the timestamps' rate: ffmpeg -r {_fps(timestamp_fps)} -i {path} fixed.mp4")
    return (f"{path}: {said} and {timing}; an edit is saved at {MIN_FPS:g}-{MAX_FPS:g} fps - give it the rate it "
            f"was shot at: ffmpeg -r 30 -i {path} fixed.mp4 (30 being that rate)")


def check_encodable(path: str, info: ClipInfo) -> None:
    """The edit keeps the source's frame size and Save Video writes h264 in yuv420p, whose colour planes are half
    size: an odd width or height fails only there, after every frame was edited. Refused up front instead of
    padded or cropped, so the edited clip always has the source's exact size."""
    if info.width % 2 or info.height % 2:
        raise VideoError(f"{path}: its frames are {info.width}x{info.height}; the edited clip is saved as h264, "
                         "which needs an even width and height - crop or pad it by one pixel first (ffmpeg -vf "
                         "\"crop=trunc(iw/2)*2:trunc(ih/2)*2\")")


def read_frames(path: str):
    """The clip's frames as ComfyUI's IMAGE tensor [T, H, W, 3] in [0, 1] (decoded as GetVideoComponents does)."""
    import av
    import numpy as np
    import torch

    try:
        with _open(path) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except (av.error.FFmpegError, IndexError) as error:
        raise VideoError(f"{path}: cannot decode its video ({error})") from None
    if not frames:
        raise VideoError(f"{path}: the video stream has no frame that decodes")
    _refuse_size_change(path, [(frame.shape[1], frame.shape[0]) for frame in frames])
    return torch.from_numpy(np.stack(frames)).float() / 255.0


# -- reading a clip -------------------------------------------------------------------------------------------------
def _open(path: str):
    """av.open, as Get Video Components calls it (metadata read strictly as UTF-8: that fails there too)."""
    import av

    try:
        return av.open(path)
    except UnicodeDecodeError as error:
        raise VideoError(f"{path}: its metadata is not UTF-8 text ({error.reason}), which ComfyUI's Load Video "
                         f"cannot read - remux it without: ffmpeg -i {path} -map_metadata -1 -c copy "
                         "fixed.mp4") from None


def _video_stream(path: str, container):
    if not container.streams.video:
        raise VideoError(f"{path}: no video stream in the file")
    stream = container.streams.video[0]
    if stream.codec_context is None:  # a codec FFmpeg does not know, or a damaged header naming none
        raise VideoError(f"{path}: PyAV has no decoder for its video stream (an unknown codec or a damaged header)")
    return stream


def _header_fps(stream) -> float | None:
    return float(stream.average_rate) if stream.average_rate else None


def _frame_times_checking_audio(path: str, container, stream) -> list[float]:
    """The video packets' times, in one pass over the file that also decodes every audio track: Get Video
    Components decodes them all, so a damaged one fails there (about 1 ms per second of 48 kHz AAC)."""
    import av

    audio = list(container.streams.audio)
    for track in audio:
        if track.codec_context is None:
            raise VideoError(f"{path}: PyAV has no decoder for its audio track #{track.index}, and ComfyUI's Get "
                             f"Video Components decodes it - drop the sound: ffmpeg -i {path} -an -c copy fixed.mp4")
    times = []
    for packet in container.demux(stream, *audio):
        if packet.stream.type == "audio":
            try:
                packet.decode()
            except av.error.FFmpegError as error:
                raise VideoError(f"{path}: its audio track #{packet.stream.index} does not decode ({_reason(error)}) "
                                 f"- drop the sound: ffmpeg -i {path} -an -c copy fixed.mp4") from None
        elif packet.pts is not None and packet.size and packet.time_base is not None:
            times.append(float(packet.pts * packet.time_base))
    return times


def _frame_sizes(path: str, whole: bool) -> list[tuple[int, int]]:
    """The decoded frames' sizes, the first frame's size first. Unless `whole`, only the keyframes are decoded
    (the size can only change there); the frame index of a change counts every frame, so a clip whose keyframes
    change size is decoded whole to find it, and so is one without a keyframe the decoder takes (intra refresh)."""
    sizes = _decoded_sizes(path, keyframes_only=not whole)
    if not whole and (not sizes or _size_change(sizes)):
        sizes = _decoded_sizes(path, keyframes_only=False)
    _refuse_size_change(path, sizes)
    return sizes


def _decoded_sizes(path: str, keyframes_only: bool) -> list[tuple[int, int]]:
    with _open(path) as container:
        stream = container.streams.video[0]
        if keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        return [(frame.width, frame.height) for frame in container.decode(stream)]


def _size_change(sizes: list[tuple[int, int]]) -> tuple[int, tuple[int, int], tuple[int, int]] | None:
    """The first frame index whose size differs from the frame before, with both sizes."""
    for index in range(1, len(sizes)):
        if sizes[index] != sizes[index - 1]:
            return index, sizes[index - 1], sizes[index]
    return None


def _refuse_size_change(path: str, sizes: list[tuple[int, int]]) -> None:
    """Get Video Components stacks every frame into one tensor: frames of two sizes fail there, deep in torch."""
    change = _size_change(sizes)
    if change:
        index, (width, height), (new_width, new_height) = change
        raise VideoError(f"{path}: its frames change size at frame {index}, from {width}x{height} to "
                         f"{new_width}x{new_height}; ComfyUI's Get Video Components needs one size for every frame - "
                         f"scale it to one size first: ffmpeg -i {path} -vf scale={width}:{height} fixed.mp4")


def _timestamp_rate(times: list[float]) -> tuple[float | None, bool]:
    """1 / the typical time between frames (None without two distinct times), and whether the clip is variable
    rate (a step off the mean). Typical: the mean of the steps within half of the median step, as one stray
    timestamp (FFmpeg guessing h264's in an avi) moves the plain mean far from every real step."""
    ordered = sorted(times)
    steps = [later - earlier for earlier, later in zip(ordered, ordered[1:], strict=False)]
    mean = sum(steps) / len(steps) if steps else 0.0
    positive = sorted(step for step in steps if step > 0)
    if mean <= 0 or not positive:
        return None, False
    median = positive[len(positive) // 2]
    typical = [step for step in positive if abs(step - median) <= 0.5 * median]
    variable = max(abs(step - mean) for step in steps) > FRAME_TIME_TOLERANCE * mean
    return len(typical) / sum(typical), variable


def _sane(fps: float) -> bool:
    return MIN_FPS <= fps <= MAX_FPS


def _rates_differ(fps: float, timestamp_fps: float | None) -> bool:
    return timestamp_fps is not None and abs(fps - timestamp_fps) > RATE_MISMATCH * timestamp_fps


def _fps(fps: float) -> str:
    return f"{round(fps, 3):g}"


def _spacing(fps: float) -> str:
    return f"{1000 / fps:.3g} ms apart ({_fps(fps)} fps)"


def _reason(error) -> str:
    """FFmpeg's words for an error, without the file name PyAV appends (the message names it already)."""
    return getattr(error, "strerror", None) or str(error)


def flicker_of_files(source: str, edited: str):
    """icedit_core.flicker.FlickerReport of two clip files."""
    from ..icedit_core import flicker

    source_frames, edited_frames = read_frames(source), read_frames(edited)
    try:
        return flicker.flicker(source_frames, edited_frames)
    except ValueError as error:
        raise VideoError(f"{edited} against {source}: {error}") from None
