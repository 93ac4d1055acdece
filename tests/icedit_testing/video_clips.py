"""Small synthetic clips for the video tests, written with PyAV (ComfyUI's own video dependency): a smooth random
texture translating by a known number of pixels per frame, optionally with an audio track or uneven frame times."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import torch
import torch.nn.functional as F


def translating_frames(frames: int = 12, size: int = 64, step: int = 8, seed: int = 0) -> torch.Tensor:
    """IMAGE frames [T, size, size, 3]: frame t shows a wide texture shifted right by step * t pixels (new texture
    enters at the left edge). The texture is smooth over a few pixels so optical flow can follow it."""
    generator = torch.Generator().manual_seed(seed)
    wide = torch.rand((1, 3, size, size + step * frames), generator=generator)
    kernel = torch.exp(-torch.arange(-6, 7, dtype=torch.float32) ** 2 / (2 * 2.0 ** 2))
    kernel = kernel / kernel.sum()
    wide = F.conv2d(F.pad(wide, (6, 6, 0, 0), mode="circular"), kernel.view(1, 1, 1, -1).expand(3, 1, 1, -1),
                    groups=3)
    wide = F.conv2d(F.pad(wide, (0, 0, 6, 6), mode="circular"), kernel.view(1, 1, -1, 1).expand(3, 1, -1, 1),
                    groups=3)
    wide = (wide - wide.amin()) / (wide.amax() - wide.amin())
    start = step * frames
    shots = [wide[0, :, :, start - step * t:start - step * t + size] for t in range(frames)]
    return torch.stack(shots).permute(0, 2, 3, 1).contiguous()


def write_clip(path: str, frames: torch.Tensor, fps: int = 12, audio: bool = False, frame_times=None) -> str:
    """An mp4 (h264, yuv420p) of IMAGE frames; `audio` adds a mono 440 Hz AAC track as long as the clip;
    `frame_times` (seconds per frame) gives uneven timestamps: a variable frame rate."""
    pixels = (frames.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    with av.open(path, mode="w") as container:
        stream = container.add_stream("h264", rate=fps)
        stream.width, stream.height = pixels.shape[2], pixels.shape[1]
        stream.pix_fmt = "yuv420p"
        if frame_times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        audio_stream = container.add_stream("aac", rate=16000) if audio else None
        for index, image in enumerate(pixels):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if frame_times is not None:
                frame.pts = int(round(1000 * sum(frame_times[:index])))
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio_stream is not None:
            seconds = len(pixels) / fps
            samples = int(16000 * seconds)
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 16000)).astype(np.float32)[None]
            audio_frame = av.AudioFrame.from_ndarray(wave, format="flt", layout="mono")
            audio_frame.sample_rate = 16000
            audio_frame.pts = 0
            for packet in audio_stream.encode(audio_frame):
                container.mux(packet)
            for packet in audio_stream.encode():
                container.mux(packet)
    return path


def decoded(path) -> np.ndarray:
    """The rgb24 frames of a file [T, H, W, 3] uint8, as ComfyUI's Get Video Components decodes them (before its
    float conversion)."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def probe(path: str) -> dict:
    """What a written clip holds: decoded frame count, average fps, size, whether it has audio, frame times."""
    with av.open(path) as container:
        video = container.streams.video[0]
        times = [float(frame.pts * frame.time_base) for frame in container.decode(video=0)]
        return {"frames": len(times), "fps": float(video.average_rate), "width": video.width,
                "height": video.height, "audio": len(container.streams.audio) > 0, "times": times}
