"""Batch throughput: the same manifest edited with 1 worker and with 2 workers (a local Ray instance) in one
run, on the smoke-test models, and the engine's own cost per item (time outside ComfyUI's executor).

    scripts/bench batch_scale --items 8 --out bench.json

Each worker is one ComfyUI server; on a CPU-only machine the workers share the same cores, so 2 workers cannot
approach 2x. Two rates are reported for each run: over the whole dispatch (each server's first item loads the
models, so with few items the start dominates), and steady (each worker's first item left out: the rate once
every server is warm, from the ledger's per-item seconds, so the engine's own time between items is not in it).
With the runner's defaults one server's torch uses every core and each of N servers gets cores / N threads
(engine._threads_per_server), so the ratio shows what running servers side by side adds over one server that
already uses the whole machine; set OMP_NUM_THREADS to give every server the same count instead. Where a GPU is
present, Ray gives each worker its own GPU; this script reports which it had.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile

from PIL import Image

from ..runner import engine, items as itemlib


def make_manifest(folder: str, count: int) -> list[itemlib.Item]:
    rows = []
    for index in range(count):
        path = os.path.join(folder, f"bench{index:03d}.png")
        image = Image.new("RGB", (96, 64))
        image.putdata([((x * (index + 5)) % 256, (y * 9) % 256, (x * y + index) % 256)
                       for y in range(64) for x in range(96)])
        image.save(path)
        rows.append({"image": path, "instruction": f"make it look like picture {index}"})
    return itemlib.from_rows(rows, folder, [f"bench item {n}" for n in range(count)])


def steady_items_per_second(lines: list[dict]) -> float | None:
    """Items per second once every worker is warm: each worker's first finished item (it loads the models) is left
    out, and the workers' rates (items over the seconds they spent on them) add up, since they run side by side.
    None when a worker finished fewer than two items."""
    by_worker: dict[str, list[float]] = {}
    for line in lines:  # the ledger is in the order items finished
        if line["status"] == "ok":
            by_worker.setdefault(line["worker"], []).append(line["seconds"])
    if not by_worker or any(len(seconds) < 2 for seconds in by_worker.values()):
        return None
    return sum((len(seconds) - 1) / sum(seconds[1:]) for seconds in by_worker.values())


def measure(workers: int, items: list[itemlib.Item], steps: int, folder: str) -> dict:
    output = os.path.join(folder, f"out-{workers}")
    config = engine.RunConfig(output=output, workers=workers, steps=steps, smoke_test=True, quiet=True)
    threads = engine._threads_per_server(config, workers) or "torch default (every core)"
    summary = engine.run(config, items, log=lambda message: None)
    if summary.edited != len(items):
        raise SystemExit(f"{workers} workers: only {summary.edited} of {len(items)} items were edited")
    per_item_wall = summary.dispatch_seconds * workers / summary.edited  # worker-seconds per item
    per_item_executor = summary.executor_seconds / summary.edited
    with open(os.path.join(output, "results.jsonl"), encoding="utf-8") as handle:
        steady = steady_items_per_second([json.loads(line) for line in handle])
    return {"workers": workers, "server_threads": threads, "items": summary.edited,
            "run_seconds": round(summary.seconds, 2),
            "dispatch_seconds": round(summary.dispatch_seconds, 2),
            "items_per_second": round(summary.edited / summary.dispatch_seconds, 4),
            "steady_items_per_second": None if steady is None else round(steady, 4),
            "worker_seconds_per_item": round(per_item_wall, 3),
            "executor_seconds_per_item": round(per_item_executor, 3),
            "engine_overhead_share": round(max(0.0, 1 - per_item_executor / per_item_wall), 4)}


def gpu_name() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1, help="sampling steps per item (smoke-test model)")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="icedit-bench-batch-")
    try:
        items = make_manifest(folder, args.items)
        one = measure(1, items, args.steps, folder)
        two = measure(2, items, args.steps, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    gpu = gpu_name()
    results = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                           "gpu": gpu or "none: the real-size model on a GPU was not measured"},
               "model": "smoke-test FLUX.1 Fill (1+1 blocks, width 3072), panel width 64",
               "steps": args.steps, "one_worker": one, "two_workers": two,
               "speedup_2_vs_1": round(two["items_per_second"] / one["items_per_second"], 3),
               "steady_speedup_2_vs_1": (round(two["steady_items_per_second"] / one["steady_items_per_second"], 3)
                                         if two["steady_items_per_second"] and one["steady_items_per_second"]
                                         else None)}
    print(f"machine: {results['machine']}")
    for label, row in (("1 worker ", one), ("2 workers", two)):
        print(f"{label}: {row['items_per_second']:.3f} items/s, threads per server: {row['server_threads']} "
              f"({row['items']} items in {row['dispatch_seconds']} s, "
              f"start-up included: {row['run_seconds']} s); per item {row['worker_seconds_per_item']} worker-s, "
              f"of which the executor {row['executor_seconds_per_item']} s -> engine overhead "
              f"{100 * row['engine_overhead_share']:.1f} %")
    print(f"2 workers / 1 worker: {results['speedup_2_vs_1']:.2f}x items per second")
    for label, row in (("1 worker ", one), ("2 workers", two)):
        if row["steady_items_per_second"] is not None:
            print(f"{label} steady (each worker's first item left out): {row['steady_items_per_second']:.3f} items/s")
    if results["steady_speedup_2_vs_1"] is not None:
        print(f"2 workers / 1 worker, steady: {results['steady_speedup_2_vs_1']:.2f}x")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
