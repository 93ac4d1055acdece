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
        return notes


def inspect(path: str) -> ClipInfo:
    """What the clip holds, from its packets' timestamps and its first decoded frame (no full decode); VideoError
    for a file that is not a video, has no video stream or no frame that decodes."""
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream in the file")
            stream = container.streams.video[0]
            times = [float(packet.pts * packet.time_base) for packet in container.demux(stream)
                     if packet.pts is not None and packet.size]
            audio = bool(container.streams.audio)
            average = float(stream.average_rate) if stream.average_rate else 0.0
            width, height = stream.width, stream.height
        with av.open(path) as container:
            first = next(container.decode(video=0), None)
    except av.error.FFmpegError as error:
        raise VideoError(f"{path}: not a video PyAV can read ({error})") from None
    if not times or first is None:
        raise VideoError(f"{path}: the video stream has no frame that decodes")
    ordered = sorted(times)
    steps = [later - earlier for earlier, later in zip(ordered, ordered[1:], strict=False)]
    mean = sum(steps) / len(steps) if steps else 0.0
    variable = bool(steps) and mean > 0 and max(abs(step - mean) for step in steps) > FRAME_TIME_TOLERANCE * mean
    return ClipInfo(frames=len(times), fps=average or (1.0 / mean if mean else 0.0), width=width, height=height,
                    audio=audio, variable_frame_rate=variable)


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
        with av.open(path) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except (av.error.FFmpegError, IndexError) as error:
        raise VideoError(f"{path}: cannot decode its video ({error})") from None
    if not frames:
        raise VideoError(f"{path}: the video stream has no frame that decodes")
    return torch.from_numpy(np.stack(frames)).float() / 255.0


def flicker_of_files(source: str, edited: str):
    """icedit_core.flicker.FlickerReport of two clip files."""
    from ..icedit_core import flicker

    source_frames, edited_frames = read_frames(source), read_frames(edited)
    try:
        return flicker.flicker(source_frames, edited_frames)
    except ValueError as error:
        raise VideoError(f"{edited} against {source}: {error}") from None
