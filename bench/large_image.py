"""The ComfyUI server's memory for one very large source: a 12000x9000 JPEG edited through the runner's command
line (python -m comfyui_icedit.runner.run_icedit --edit big.jpg "make it snowy" --server URL) on a headless
ComfyUI started with the runner's options, the pack and the smoke-test models (basic workflow). Not a test.

    scripts/bench large_image --out bench/results/large_image_cpu.json
    scripts/bench large_image --runs 3 --steady-allocator      # the spread over fresh servers, as the test runs it

On one server: a small image (640x480) is edited first, so the models are loaded and every node has run once; the
server's resident size then is the baseline ("the loaded models"). Its peak (VmHWM) is reset and the large JPEG
is edited; the peak above the baseline is the figure, and what stays resident after it ("kept": ComfyUI's cache
holds the last prompt's outputs, the source and the edit among them, until the next prompt).

Then, in a process of its own, node by node: ComfyUI's LoadImage, ICEditDiptych, ICEditCrop, ComfyUI's SaveImage
(the comparison) and ICEditSaveImage (the edit), as the workflow saves them, called in-process in the workflow's
order, each output kept alive as ComfyUI's cache keeps it, the peak of each (VmHWM reset before it): where the
copies are. (Until the workflows saved the edit with ICEditSaveImage, ComfyUI's SaveImage saved it: its own peak
was +2.72 GiB, the server's peak +5.22 GiB.)

--steady-allocator starts the server and the probe with glibc's MALLOC_MMAP_THRESHOLD_ and
MALLOC_TRIM_THRESHOLD_ at 128 KB: every allocation above that is a mapping of its own, returned to the system when
freed, so the resident size counts what is alive (without it glibc raises its threshold after large frees and some
freed memory stays resident, which moves the numbers from run to run; see tests/system/test_large_image_memory.py).

Sizes are GiB. The server runs with --cpu here (no GPU on this machine), so the smoke models sit in the same
process memory and in the baseline; the image work above the baseline is CPU memory on a GPU machine too.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
from PIL import Image

from ..devtools.allocator import STEADY_ALLOCATOR
from .common import write_results
from ..icedit_core.model_files import SMOKE_NODES_ENV
from ..runner import comfy_host, engine, paths

GIGABYTE = 1024 ** 3


def make_jpeg(path: str, width: int, height: int, seed: int = 0) -> int:
    """A photo-like JPEG (smooth gradients, soft shapes, mild grain) of this size; returns its byte size. Built a
    band of rows at a time, so the bench process itself stays small."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height))
    band = 512
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    for top in range(0, height, band):
        rows = min(band, height - top)
        ys = (np.arange(top, top + rows, dtype=np.float32) / height)[:, None]
        shape = (rows, width)
        sky = np.stack([np.broadcast_to(90 + 120 * ys + 20 * xs, shape), np.broadcast_to(150 + 60 * ys, shape),
                        np.broadcast_to(230 - 80 * ys, shape)], axis=-1)
        ground = np.stack([np.broadcast_to(70 + 40 * xs, shape), np.broadcast_to(120 + 30 * ys, shape),
                           np.full(shape, 60.0, dtype=np.float32)], axis=-1)
        hills = (ys > 0.55 + 0.1 * np.sin(xs * 12.0))[..., None]
        pixels = np.where(hills, ground, sky) + rng.normal(0.0, 6.0, size=(rows, width, 3)).astype(np.float32)
        image.paste(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB"), (0, top))
    image.save(path, format="JPEG", quality=90)
    return os.path.getsize(path)


def make_small(path: str) -> None:
    image = Image.new("RGB", (640, 480), (110, 170, 230))
    image.paste((70, 130, 60), (0, 330, 640, 480))
    image.save(path, format="JPEG", quality=90)


# -- resident sizes from /proc ---------------------------------------------------------------------------------
def status_bytes(pid: int | str, field: str) -> int:
    """A /proc/<pid>/status size field (VmRSS:, VmHWM:) in bytes."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/{pid}/status has no {field} line")


def reset_peak(pid: int | str) -> None:
    """Sets the process's VmHWM to its current resident size (Linux: clear_refs 5)."""
    with open(f"/proc/{pid}/clear_refs", "w") as handle:
        handle.write("5")


# -- through the runner: a server, the runner's command line against it ------------------------------------------
def start_server(folder: str, steady: bool) -> tuple[subprocess.Popen, str]:
    """A headless ComfyUI with this pack and the smoke-test models, started with the options the runner's own
    servers get (runner/comfy_host.py), on a port of its own."""
    smoke_dir = engine.ensure_smoke_models(sys.executable, os.environ.get("ICEDIT_CACHE", engine.RunConfig.cache))
    dirs = {name: os.path.join(folder, name) for name in ("input", "output", "temp", "user")}
    for path in dirs.values():
        os.makedirs(path, exist_ok=True)
    extra = comfy_host.write_extra_model_paths(os.path.join(folder, "extra_model_paths.yaml"),
                                               os.path.join(paths.PACK_ROOT, ".host", "custom_nodes"), [smoke_dir])
    port = comfy_host.free_port()
    command = [sys.executable, os.path.join(paths.comfyui_path(), "main.py"), "--listen", "127.0.0.1",
               "--port", str(port), "--disable-auto-launch", "--cpu",
               "--database-url", "sqlite:///" + os.path.join(folder, "comfyui.db"),
               "--input-directory", dirs["input"], "--output-directory", dirs["output"],
               "--temp-directory", dirs["temp"], "--user-directory", dirs["user"], "--extra-model-paths-config", extra]
    env = {**os.environ, SMOKE_NODES_ENV: "1", "PYTHONUNBUFFERED": "1", **(STEADY_ALLOCATOR if steady else {})}
    env.pop("PYTHONPATH", None)  # ComfyUI's own sys.path: the checkout's nodes/ must not shadow its nodes module
    log = open(os.path.join(folder, "comfyui.log"), "w", encoding="utf-8")
    server = subprocess.Popen(command, cwd=paths.comfyui_path(), stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"ComfyUI exited while starting; see {log.name}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url + "/object_info/ICEditDiptych", timeout=5).read()
            return server, url
        time.sleep(1)
    server.kill()
    raise SystemExit("ComfyUI did not answer within 300 s")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(30)
    if server.poll() is None:
        server.kill()


def run_cli(url: str, image: str, output: str, steps: int) -> None:
    """The runner as a user runs it (what scripts/icedit execs), against the running server."""
    command = [sys.executable, "-m", "comfyui_icedit.runner.run_icedit", "--edit", image, "make it snowy",
               "--server", url, "--output", output, "--steps", str(steps), "--quiet"]
    result = subprocess.run(command, env=paths.python_env(), capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"the runner failed on {image} (exit {result.returncode}):\n{result.stdout[-2000:]}"
                         f"{result.stderr[-2000:]}")


def measure_server(big: str, small: str, steps: int, steady: bool) -> dict:
    """One fresh server: its resident size after the small edit (the baseline), then the large edit's peak."""
    folder = tempfile.mkdtemp(prefix="icedit-bench-server-")
    server, url = start_server(folder, steady)
    try:
        run_cli(url, small, os.path.join(folder, "out"), steps)
        baseline = status_bytes(server.pid, "VmRSS:")
        reset_peak(server.pid)
        started = time.monotonic()
        run_cli(url, big, os.path.join(folder, "out"), steps)
        seconds = time.monotonic() - started
        peak, kept = status_bytes(server.pid, "VmHWM:"), status_bytes(server.pid, "VmRSS:")
        edited = os.path.join(folder, "out", os.path.splitext(os.path.basename(big))[0] + "_edited.png")
        with Image.open(edited) as image:
            edited_size = list(image.size)
    finally:
        stop_server(server)
        shutil.rmtree(folder, ignore_errors=True)
    return {"baseline_rss_gb": gb(baseline), "peak_rss_gb": gb(peak), "peak_above_baseline_gb": gb(peak - baseline),
            "kept_above_baseline_gb": gb(kept - baseline), "edited_size": edited_size,
            "runner_seconds": round(seconds, 1)}


# -- node by node, in a process of its own ---------------------------------------------------------------------
def probe_nodes(big: str, panel_width: int) -> dict:
    """ComfyUI's LoadImage and SaveImage (the comparison) and the pack's nodes (ICEditSaveImage saves the edit)
    called in this process in the basic workflow's order, every output kept alive as ComfyUI's cache keeps it for
    the whole prompt; the peak of each node above what was resident before it, and what stays. The decoded
    diptych is the diptych itself (the sampler and the VAE work at panel size; what they cost does not grow with
    the source)."""
    from ..devtools import bootstrap

    bootstrap.import_pack()
    import folder_paths
    import nodes as comfy_nodes

    from ..nodes.edit import ICEditCrop, ICEditDiptych
    from ..nodes.save_image import ICEditSaveImage

    folder_paths.set_input_directory(os.path.dirname(big))
    folder_paths.set_output_directory(tempfile.mkdtemp(prefix="icedit-bench-nodes-"))
    steps = [("LoadImage", lambda kept: comfy_nodes.LoadImage().load_image(os.path.basename(big))),
             ("ICEditDiptych", lambda kept: ICEditDiptych.execute(kept["LoadImage"][0], panel_width).result),
             ("ICEditCrop", lambda kept: ICEditCrop.execute(kept["ICEditDiptych"][0], kept["ICEditDiptych"][2],
                                                            True).result),
             ("SaveImage comparison", lambda kept: comfy_nodes.SaveImage().save_images(kept["ICEditCrop"][1],
                                                                                       "comparison")),
             ("ICEditSaveImage edited", lambda kept: ICEditSaveImage.execute(kept["ICEditCrop"][0], "edited").ui)]
    start = status_bytes("self", "VmRSS:")
    kept, report = {}, {}
    for name, step in steps:
        before = status_bytes("self", "VmRSS:")
        reset_peak("self")
        kept[name] = step(kept)
        report[name] = {"peak_above_start_gb": gb(status_bytes("self", "VmHWM:") - start),
                        "own_peak_gb": gb(status_bytes("self", "VmHWM:") - before),
                        "kept_above_start_gb": gb(status_bytes("self", "VmRSS:") - start)}
    shutil.rmtree(folder_paths.get_output_directory(), ignore_errors=True)
    return report


def measure_nodes(big: str, panel_width: int, steady: bool) -> dict:
    env = paths.python_env({**os.environ, **(STEADY_ALLOCATOR if steady else {})})
    result = subprocess.run([sys.executable, "-m", "comfyui_icedit.bench.large_image", "--probe-nodes", big,
                             "--panel-width", str(panel_width)], env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"the node probe failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def gb(size: int) -> float:
    return round(size / GIGABYTE, 3)


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    memory = status_like("/proc/meminfo", "MemTotal:")
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "memory_gb": round(memory / GIGABYTE, 1),
            "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
            "python": platform.python_version(), "torch": importlib.metadata.version("torch"),
            "pillow": importlib.metadata.version("pillow"), "numpy": np.__version__,
            "gpu": "none (the server ran with --cpu)" if not shutil.which("nvidia-smi") else "see nvidia-smi"}


def status_like(path: str, field: str) -> int:
    with open(path) as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith(field))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=12000, help="the large JPEG's width")
    parser.add_argument("--height", type=int, default=9000, help="the large JPEG's height")
    parser.add_argument("--runs", type=int, default=1, help="fresh servers, one large edit each")
    parser.add_argument("--steps", type=int, default=1, help="sampling steps (smoke-test model)")
    parser.add_argument("--panel-width", type=int, default=512, help="the node probe's panel width")
    parser.add_argument("--steady-allocator", action="store_true",
                        help="the server (and the node probe) with glibc's mmap and trim thresholds fixed at 128 KB")
    parser.add_argument("--no-nodes", action="store_true", help="skip the node-by-node probe")
    parser.add_argument("--probe-nodes", metavar="JPEG", help=argparse.SUPPRESS)  # the probe's own process
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.probe_nodes:
        print(json.dumps(probe_nodes(args.probe_nodes, args.panel_width)))
        return 0
    started_machine = machine()
    folder = tempfile.mkdtemp(prefix="icedit-bench-large-")
    try:
        big, small = os.path.join(folder, "big.jpg"), os.path.join(folder, "small.jpg")
        jpeg_bytes = make_jpeg(big, args.width, args.height)
        make_small(small)
        runs = []
        for index in range(args.runs):
            runs.append(measure_server(big, small, args.steps, args.steady_allocator))
            print(f"run {index + 1}: baseline {runs[-1]['baseline_rss_gb']} GiB, peak +"
                  f"{runs[-1]['peak_above_baseline_gb']} GiB, kept +{runs[-1]['kept_above_baseline_gb']} GiB",
                  flush=True)
        per_node = None if args.no_nodes else measure_nodes(big, args.panel_width, args.steady_allocator)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    float_image_gb = args.width * args.height * 3 * 4 / GIGABYTE
    results = {"machine": started_machine,
               "workflow": "basic (LoadImage -> ICEditDiptych -> ... -> ICEditCrop -> ICEditSaveImage edited + "
                           "SaveImage comparison) through the runner's command line (--server), smoke-test "
                           "models, --cpu",
               "source": f"{args.width}x{args.height} JPEG, {jpeg_bytes / 2 ** 20:.1f} MiB; "
                         f"{float_image_gb:.2f} GiB as a float32 IMAGE",
               "units": "GiB (2^30 bytes)", "steps": args.steps, "steady_allocator": args.steady_allocator,
               "server_runs": runs,
               "peak_above_baseline_gb_max": max(run["peak_above_baseline_gb"] for run in runs),
               "per_node_in_process": per_node}
    if per_node:
        for node, row in per_node.items():
            print(f"  {node:22s} peak +{row['peak_above_start_gb']:.2f} GiB (its own +{row['own_peak_gb']:.2f}), "
                  f"then +{row['kept_above_start_gb']:.2f} GiB kept")
    print(f"peak above the loaded models: +{results['peak_above_baseline_gb_max']} GiB (max of {args.runs} runs)")
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
