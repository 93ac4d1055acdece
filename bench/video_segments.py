"""Memory of a long clip through the runner: a synthetic 1920x1080 clip edited with --video (smoke-test models, 1
step) against a headless ComfyUI started with the runner's options, in segments of --segment-frames. Not a test.

    scripts/bench video_segments --out bench/results/video_segments_cpu.json
    scripts/bench video_segments --frames 48 --baseline-frames 16     # a quick look

First a small clip (64x64, 4 frames) is edited, so the models are loaded and every node has run once; the
server's resident size then is "the loaded models". Then, each on the same server:
- the long clip (--frames, default 240: 10 s at 24 fps) in segments;
- a short 1080p clip (--baseline-frames) in segments;
- the baseline: the same short clip edited whole (one prompt, as before segments existed).
For each: the peak of the whole process tree (the server and the runner with its children, sampled every 50 ms:
the sum of their resident sizes) above the server's resident size with the models loaded, the server's own peak
(VmHWM, reset before the run: exact) above the same, and seconds per frame. The whole clip runs last: ComfyUI's
cache keeps a prompt's outputs until the next prompt replaces them. The whole-clip baseline grows with the clip's length; the segmented runs
should not.

The server runs with glibc's mmap and trim thresholds at 128 KB (as large_image's --steady-allocator), so freed
memory leaves its resident size and one run's leftovers do not hide the next one's peak. Sizes are GiB. The
server runs with --cpu here, so the smoke models sit in the same process memory; the frames'
memory above the baseline is CPU memory on a GPU machine too.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from ..runner import paths
from .common import write_results
from .large_image import gb, machine, reset_peak, start_server, status_bytes, stop_server


def write_clip(path: str, frames: int, width: int, height: int, fps: int = 24, seed: int = 0) -> int:
    """An h264 clip of a smooth random texture panning 6 px right and 2 px down per frame (what flow noise
    follows), with a 440 Hz mono sound; written a frame at a time. Returns its byte size."""
    import av

    rng = np.random.default_rng(seed)
    coarse = rng.random((height // 16 + frames // 4 + 4, width // 16 + frames // 2 + 4, 3)).astype(np.float32)
    texture = np.kron(coarse, np.ones((16, 16, 1), np.float32))  # blocks of 16 px, then blurred by the codec
    with av.open(path, "w") as container:
        stream = container.add_stream("h264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        sound = container.add_stream("aac", rate=16000)
        for index in range(frames):
            x, y = 6 * index, 2 * index
            pixels = (texture[y:y + height, x:x + width] * 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        samples = 16000 * frames // fps
        wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 16000)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(wave, format="flt", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in list(sound.encode(frame)) + list(sound.encode()):
            container.mux(packet)
    return os.path.getsize(path)


def tree_rss(pids: list[int]) -> int:
    """The resident bytes of these processes and all their descendants."""
    import psutil

    total, seen = 0, set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                if process.pid not in seen:
                    seen.add(process.pid)
                    with contextlib.suppress(psutil.Error):
                        total += process.memory_info().rss
    return total


def run_clip(url: str, server_pid: int, clip: str, output: str, segment_frames: int, loaded: int) -> dict:
    """The runner on one clip against the server: the process tree's peak and the server's own (VmHWM) above
    `loaded` (the server's resident size with the models loaded, before any long clip)."""
    command = [sys.executable, "-m", "comfyui_icedit.runner.run_icedit", "--video", clip, "make it snowy",
               "--server", url, "--output", output, "--steps", "1", "--segment-frames", str(segment_frames),
               "--quiet"]
    before = tree_rss([server_pid])
    reset_peak(server_pid)
    started = time.monotonic()
    runner = subprocess.Popen(command, env=paths.python_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    peak, stop = [before], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss([server_pid, runner.pid]))
            time.sleep(0.05)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    said = runner.communicate(timeout=7200)[0]
    stop.set()
    sampler.join()
    seconds = time.monotonic() - started
    if runner.returncode != 0:
        raise SystemExit(f"the runner failed on {clip} (exit {runner.returncode}):\n{said[-3000:]}")
    return {"tree_peak_above_models_gb": gb(peak[0] - loaded),
            "server_peak_above_models_gb": gb(status_bytes(server_pid, "VmHWM:") - loaded),
            "held_before_above_models_gb": gb(before - loaded), "seconds": round(seconds, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=240, help="the long clip's frames")
    parser.add_argument("--baseline-frames", type=int, default=48, help="the short clip's frames (edited whole too)")
    parser.add_argument("--segment-frames", type=int, default=None, help="frames per segment (default: the "
                        "runner's)")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    from ..runner.settings import SEGMENT_FRAMES

    segment_frames = args.segment_frames or SEGMENT_FRAMES
    started_machine = machine()
    folder = tempfile.mkdtemp(prefix="icedit-bench-video-")
    server = None
    try:
        small, short, long = (os.path.join(folder, name) for name in ("small.mp4", "short.mp4", "long.mp4"))
        write_clip(small, 4, 64, 64)
        short_bytes = write_clip(short, args.baseline_frames, args.width, args.height)
        long_bytes = write_clip(long, args.frames, args.width, args.height)
        # glibc's thresholds fixed (devtools/allocator.py): the server's resident size counts what is alive, so
        # each run's peak is measured above what the models and ComfyUI's cache really hold.
        server, url = start_server(os.path.join(folder, "server"), steady=True)
        run_clip(url, server.pid, small, os.path.join(folder, "warm"), segment_frames, 0)
        loaded = status_bytes(server.pid, "VmRSS:")
        runs = {}
        # The whole clip last: ComfyUI's cache keeps a prompt's outputs until the next prompt replaces them, so
        # after it every run would start with its frames still held.
        for name, clip, frames, per_segment in (
                ("long_segmented", long, args.frames, segment_frames),
                ("short_segmented", short, args.baseline_frames, segment_frames),
                ("short_whole", short, args.baseline_frames, args.baseline_frames)):
            row = run_clip(url, server.pid, clip, os.path.join(folder, name), per_segment, loaded)
            row.update(frames=frames, segment_frames=per_segment,
                       seconds_per_frame=round(row["seconds"] / frames, 3))
            runs[name] = row
            print(f"{name}: {frames} frames in segments of {per_segment}: process tree peak "
                  f"+{row['tree_peak_above_models_gb']} GiB above the loaded models (server "
                  f"+{row['server_peak_above_models_gb']} GiB), {row['seconds_per_frame']} s per frame", flush=True)
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(folder, ignore_errors=True)
    frame_gb = args.width * args.height * 3 * 4 / 2 ** 30
    results = {
        "machine": started_machine,
        "workflow": "video (LoadVideo -> ICEdit per frame with flow noise -> CreateVideo -> SaveVideo, ICEdit "
                    "Video Consistency) through the runner's --video (--server), smoke-test models, 1 step, --cpu",
        "clips": f"{args.width}x{args.height} h264 at 24 fps with sound: {args.baseline_frames} frames "
                 f"({short_bytes / 2 ** 20:.1f} MiB) and {args.frames} frames ({long_bytes / 2 ** 20:.1f} MiB); "
                 f"one frame is {frame_gb * 1024:.1f} MiB as float32",
        "units": "GiB (2^30 bytes); peaks above the server's resident size with the models loaded (after a 4-frame "
                 "64x64 clip), before any long clip",
        "server_rss_with_models_gb": gb(loaded),
        "runs": runs,
        "ratio_short_whole_over_segmented": round(runs["short_whole"]["tree_peak_above_models_gb"]
                                                  / runs["short_segmented"]["tree_peak_above_models_gb"], 2),
        "ratio_long_over_short_segmented": round(runs["long_segmented"]["tree_peak_above_models_gb"]
                                                 / runs["short_segmented"]["tree_peak_above_models_gb"], 2),
        "goal": "long_segmented tree peak under 6 GiB",
        "goal_met": runs["long_segmented"]["tree_peak_above_models_gb"] < 6.0,
    }
    print(f"peak of the {args.frames}-frame clip: +{runs['long_segmented']['tree_peak_above_models_gb']} GiB; the "
          f"{args.baseline_frames}-frame clip whole / in segments: {results['ratio_short_whole_over_segmented']}x")
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
