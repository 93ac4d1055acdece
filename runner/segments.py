"""Long clips in bounded memory: a clip is edited a segment of frames at a time, each segment one prompt, and the
edited segments are joined into one file. Only one segment's frames are ever decoded at once, on either side.

- In: each segment is written as a lossless FFV1 .avi of exactly the RGB frames ComfyUI's Get Video Components
  decodes from the source (its rgb24 frames, kept as RGB), at the source's exact average rate and with no
  sound, so the workflow edits the same pixels it would have read from the whole clip. The source is decoded
  once, front to back, as the segments are asked for.
- Out: the edited segments (h264 mp4s from Save Video, all of one size and rate) are joined packet for packet,
  without re-encoding, and the source's sound is encoded beside them the way Save Video encodes it (AAC, cut to
  the video's length).
- Between: ICEdit Video Noise reports the state its noise ended in and the next segment's prompt starts from it,
  so the noise runs on as if the clip were one (nodes/video.py, icedit_core/video_noise.CarryState).

PyAV, ComfyUI's own video dependency. Stdlib otherwise.
"""
from __future__ import annotations

import math
import os
from contextlib import contextmanager
from fractions import Fraction

from .video import VideoError, _open

SEGMENT_EXTENSION = ".avi"  # FFV1 in AVI: the frame rate kept exactly, and a type ComfyUI's Load Video lists
# (Python's own mimetypes table knows .avi as video everywhere; .mkv only where the system's table does)


def plan(frames: int, segment_frames: int) -> list[tuple[int, int]]:
    """[(start, stop)] covering frames 0 .. frames - 1, segment_frames each (the last may be shorter)."""
    if segment_frames < 1:
        raise ValueError(f"segment_frames is {segment_frames}; a segment holds at least one frame")
    return [(start, min(frames, start + segment_frames)) for start in range(0, frames, segment_frames)]


class SegmentSource:
    """Writes the source's frames start .. stop - 1 as a segment file, decoding the source once from the front
    as segments are asked for in order (a resumed run skips the finished ones once; asking again for an earlier
    segment, as a retry does, starts the decoding over)."""

    def __init__(self, path: str):
        self.path = path
        self._container = None
        self._frames = None
        self._next = 0  # the index of the frame self._frames gives next
        self._rate: Fraction | None = None

    def write(self, start: int, stop: int, out_path: str) -> int:
        """The segment's file at out_path (whole or not at all); returns the frames written."""
        import av

        if self._container is None or start < self._next:
            self._reopen()
        written = 0
        with _whole_or_nothing(out_path, f"{self.path}: writing frames {start + 1}-{stop} as a segment failed") as temp:
            with av.open(temp, "w", format="avi") as out:
                stream = None
                for frame in self._take(start, stop):
                    if stream is None:
                        stream = out.add_stream("ffv1", rate=self._rate)
                        stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "bgr0"
                    rgb = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
                    rgb.pts = written
                    for packet in stream.encode(rgb.reformat(format="bgr0")):
                        out.mux(packet)
                    written += 1
                if stream is not None:
                    for packet in stream.encode():
                        out.mux(packet)
            if written != stop - start:
                raise VideoError(f"{self.path}: frames {start + 1}-{stop} were asked for, but the video stream ends "
                                 f"after frame {start + written}")
        return written

    def _reopen(self) -> None:
        self.close()
        self._container = _open(self.path)
        stream = self._container.streams.video[0]
        self._rate = Fraction(stream.average_rate) if stream.average_rate else Fraction(1)  # as Get Video Components
        self._frames = self._container.decode(stream)
        self._next = 0

    def _take(self, start: int, stop: int):
        for frame in self._frames:
            index = self._next
            self._next += 1
            if index >= start:
                yield frame
                if self._next >= stop:
                    return

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def join(segment_paths: list[str], source: str, out_path: str) -> int:
    """The edited segments, in order, as one mp4 at out_path (whole or not at all), with the source's first
    audio track encoded as Save Video does (AAC, cut to the video's length). The segments' h264 packets are copied,
    not re-encoded; they must share one size, rate and codec setup (VideoError otherwise). Returns the frames."""
    import av

    if not segment_paths:
        raise VideoError(f"{source}: no edited segment to join")
    with _whole_or_nothing(out_path, f"joining the edited segments of {source} failed") as temp:
        with av.open(temp, "w", format="mp4") as out, _open(source) as source_container:
            # Every stream is added before the first packet goes in (the muxer writes its header then).
            with av.open(segment_paths[0]) as first:
                video_stream = out.add_stream_from_template(first.streams.video[0]) if first.streams.video else None
            audio = _add_audio_stream(source_container, out)
            frames, rate = _join_video(segment_paths, out, video_stream)
            if audio is not None:
                _encode_audio(source_container, out, *audio, frames / rate)
    return frames


@contextmanager
def _whole_or_nothing(out_path: str, failure: str):
    """A temporary path to write to, moved to out_path when the block succeeds and removed otherwise; PyAV's
    errors become a VideoError that starts with `failure`."""
    import av

    temp = f"{out_path}.partial-{os.getpid()}"
    try:
        yield temp
        os.replace(temp, out_path)
    except av.error.FFmpegError as error:
        raise VideoError(f"{failure} ({error})") from None
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def _join_video(segment_paths: list[str], out, out_stream) -> tuple[int, Fraction]:
    import av

    first, offset, frames = None, 0, 0
    for path in segment_paths:
        with av.open(path) as segment:
            if not segment.streams.video:
                raise VideoError(f"{path}: the edited segment has no video stream")
            stream = segment.streams.video[0]
            setup = (stream.codec_context.name, stream.codec_context.width, stream.codec_context.height,
                     stream.average_rate, stream.time_base, bytes(stream.codec_context.extradata or b""))
            if first is None:
                first = setup
            elif setup != first:
                raise VideoError(f"{path}: this edited segment is {_describe(setup)}, the first one "
                                 f"{_describe(first)}; segments are joined without re-encoding, so they must match")
            end = offset
            for packet in segment.demux(stream):
                if packet.size == 0:  # the demuxer's end marker
                    continue
                packet_end = packet.pts + (packet.duration or 0)
                end = max(end, offset + packet_end)
                packet.pts += offset
                packet.dts = None if packet.dts is None else packet.dts + offset
                packet.stream = out_stream
                out.mux(packet)
                frames += 1
            offset = end
    return frames, first[3] or Fraction(1)


def _describe(setup) -> str:
    codec, width, height, rate, time_base, _ = setup
    return f"{codec} {width}x{height} at {float(rate or 0):.3g} fps (time base {time_base})"


def _add_audio_stream(container, out):
    """An AAC stream in `out` for the source's first audio track, mono or stereo as Save Video writes: (the track,
    the stream, a resampler to the encoder's format), or None without sound."""
    import av

    if not container.streams.audio:
        return None
    track = container.streams.audio[0]
    rate = int(track.sample_rate or track.codec_context.sample_rate or 1)
    layout = "mono" if track.codec_context.channels == 1 else "stereo"
    stream = out.add_stream("aac", rate=rate)
    stream.layout = layout
    return track, stream, av.AudioResampler(format="fltp", layout=layout, rate=rate)


def _encode_audio(container, out, track, stream, resampler, seconds) -> None:
    """The track encoded into `stream`, cut at `seconds` (Save Video keeps ceil(rate / fps * frames) samples of the
    waveform Get Video Components read)."""
    keep, written = math.ceil(stream.rate * seconds), 0
    for frame in container.decode(track):
        for converted in resampler.resample(frame):
            room = keep - written
            if room <= 0:
                break
            if converted.samples > room:
                converted = _first_samples(converted, room)
            converted.pts = written
            written += converted.samples
            for packet in stream.encode(converted):
                out.mux(packet)
        if written >= keep:
            break
    for packet in stream.encode(None):
        out.mux(packet)


def _first_samples(frame, count: int):
    import av

    cut = av.AudioFrame.from_ndarray(frame.to_ndarray()[:, :count], format=frame.format.name, layout=frame.layout.name)
    cut.sample_rate = frame.sample_rate
    return cut
