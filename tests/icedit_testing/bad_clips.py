"""Clips broken the ways users' clips are, for tests/core/test_video_bad_input.py: frames that change size
mid-stream, frame-rate headers of 0 or 10 000 fps, sound without a picture, a damaged mp4 index (its 'moov' box).
Written with PyAV (ComfyUI's own video dependency) into a test's tmp_path; a few are patched byte by byte where
PyAV will not write the damage itself. Also a copy of what ComfyUI's Get Video Components does with a file, to
check the runner refuses every clip that would fail there (tests/core never imports ComfyUI)."""
from __future__ import annotations

import struct
from fractions import Fraction

import av
import numpy as np

from icedit_testing import video_clips

# mp4 boxes that hold other boxes: the path from the file to a track's sample tables.
MP4_CONTAINER_BOXES = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl", b"udta"})
MKV_DEFAULT_DURATION = bytes([0x23, 0xE3, 0x83])  # Matroska's TrackEntry/DefaultDuration element id (nanoseconds)


def gradient(width: int, height: int, shade: int) -> np.ndarray:
    """An RGB frame [height, width, 3]: a horizontal ramp, lighter with `shade`, so every frame differs."""
    ramp = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
    return np.broadcast_to(ramp + 5 * shade, (height, width, 3)).astype(np.uint8).copy()


def write_size_changing_clip(path, sizes, codec: str = "h264", fps: int = 12) -> str:
    """One video stream whose frames have `sizes` [(width, height), ...] in turn, as a camera or a joining tool that
    switches resolution writes it. An encoder has one size (PyAV rescales a frame of another size to it), so each
    run of one size gets an encoder of its own and all their packets go into the one stream; h264's new sequence
    header comes in-band with the run's first keyframe, and the decoder follows it."""
    runs: list[list] = []
    for size in sizes:
        if runs and runs[-1][0] == tuple(size):
            runs[-1][1] += 1
        else:
            runs.append([tuple(size), 1])
    pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = runs[0][0]
        stream.pix_fmt = pix_fmt
        index = 0
        for (width, height), count in runs:
            encoder = av.CodecContext.create(codec, "w")
            encoder.width, encoder.height, encoder.pix_fmt = width, height, pix_fmt
            encoder.time_base, encoder.framerate = Fraction(1, fps), Fraction(fps)
            packets = []
            for _ in range(count):
                frame = av.VideoFrame.from_ndarray(gradient(width, height, index), format="rgb24")
                frame.pts, frame.time_base = index, Fraction(1, fps)
                packets += encoder.encode(frame)
                index += 1
            packets += encoder.encode(None)
            for packet in packets:
                packet.stream = stream
                container.mux(packet)
    return str(path)


def write_audio_only(path, seconds: float = 0.5, sample_rate: int = 16000) -> str:
    """An AAC track and nothing else (a voice memo saved as .mp4)."""
    samples = int(sample_rate * seconds)
    wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / sample_rate)).astype(np.float32)[None]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=sample_rate)
        frame = av.AudioFrame.from_ndarray(wave, format="flt", layout="mono")
        frame.sample_rate, frame.pts = sample_rate, 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return str(path)


def write_mkv_default_duration(path, nanoseconds: int, frames: int = 6, fps: int = 12) -> str:
    """An h264 mkv whose frames are 1/fps apart but whose header's DefaultDuration (the rate FFmpeg reports) is
    patched to `nanoseconds`: 0 means no rate in the header (FFmpeg then estimates one from the timestamps)."""
    video_clips.write_clip(str(path), video_clips.translating_frames(frames=frames, size=32, step=4), fps=fps)
    data = bytearray(open(path, "rb").read())
    at = data.index(MKV_DEFAULT_DURATION)
    width = data[at + 3] & 0x0F  # a one-byte EBML size: 0x8N means N bytes of value
    assert data[at + 3] & 0xF0 == 0x80 and nanoseconds < 256 ** width, "an element size this patch cannot keep"
    data[at + 4:at + 4 + width] = nanoseconds.to_bytes(width, "big")
    open(path, "wb").write(bytes(data))
    return str(path)


def write_mp4_without_any_rate(path, frames: int = 6) -> str:
    """An mpeg4-part-2 mp4 (no VUI timing, unlike h264) whose durations (mvhd, tkhd, mdhd) and sample deltas
    (stts) are all zero: no rate in the header, and every frame at time 0."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(gradient(32, 32, index), format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = bytearray(open(path, "rb").read())
    for box, duration_at in ((b"mvhd", 24), (b"tkhd", 28), (b"mdhd", 24)):  # where version 0 keeps its duration
        [(start, _)] = mp4_boxes(data, box)
        data[start + duration_at:start + duration_at + 4] = bytes(4)
    [(start, _)] = mp4_boxes(data, b"stts")
    (entries,) = struct.unpack(">I", data[start + 12:start + 16])
    for entry in range(entries):
        at = start + 16 + 8 * entry + 4  # (sample count, sample delta) pairs
        data[at:at + 4] = bytes(4)
    open(path, "wb").write(bytes(data))
    return str(path)


def mp4_boxes(data: bytes, name: bytes, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(offset, size) of every box called `name`, walking the box tree (not a byte search: mdat holds anything)."""
    end = len(data) if end is None else end
    found = []
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        if size < 8:
            break
        if kind == name:
            found.append((start, size))
        if kind in MP4_CONTAINER_BOXES:
            found += mp4_boxes(data, name, start + 8, start + size)
        start += size
    return found


def write_good_mp4(path, audio: bool = True) -> str:
    """A plain h264 (+ AAC) mp4 as PyAV writes it: mdat first, its index (moov) at the end."""
    return video_clips.write_clip(str(path), video_clips.translating_frames(frames=12, size=32, step=4), fps=12,
                                  audio=audio)


def track_box(data: bytes, kind: str, name: bytes) -> tuple[int, int]:
    """(offset, size) of box `name` in the first track of `kind` ('vide' or 'soun', from its hdlr box)."""
    for start, size in mp4_boxes(data, b"trak"):
        [(handler, _)] = mp4_boxes(data, b"hdlr", start + 8, start + size)
        if data[handler + 16:handler + 20] == kind.encode():
            [box] = mp4_boxes(data, name, start + 8, start + size)
            return box
    raise LookupError(f"no {kind} track")


def damaged_copy(source, target, offset: int, replacement: bytes) -> str:
    data = bytearray(open(source, "rb").read())
    data[offset:offset + len(replacement)] = replacement
    open(target, "wb").write(bytes(data))
    return str(target)


def decode_like_get_video_components(path) -> tuple[int, float]:
    """What ComfyUI 0.3.75's VideoFromFile.get_components does with a file (comfy_api/latest/_input_impl/
    video_types.py), without torch: decode every video frame and stack them, take the average rate (1 without one),
    decode every audio track. Raises where it raises; (frames, fps) otherwise."""
    with av.open(str(path), mode="r") as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        if frames:
            np.stack(frames)
        stream = next(s for s in container.streams if s.type == "video")
        rate = float(stream.average_rate) if stream.average_rate else 1.0
        container.seek(0)
        for track in container.streams:
            if track.type == "audio":
                chunks = [frame.to_ndarray() for packet in container.demux(track) for frame in packet.decode()]
                if chunks:
                    np.concatenate(chunks, axis=1)
    return len(frames), rate
