"""The batch engine end to end: a 6-item manifest in its three forms, edited by one server in sequence, by two
Ray workers on a local Ray instance, and by two running servers (--servers), must give the same bytes; the
ledger has one ok line per item; a re-run edits nothing; a worker's ComfyUI killed mid-run and an interrupted
run lose and duplicate nothing. Real ComfyUI servers, real Ray, smoke-test models,
`python -m comfyui_icedit.runner.run_icedit` as a user runs it.

Starting ComfyUI servers and Ray instances is most of this module's time, so where one run can show several of
these behaviours it does (each assertion still names what it checks): the interrupted run and its continuation are
the two-Ray-worker run, the running servers with and without the pack share one run, and the killed-server run is
the local Ray run started beside an existing cluster."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
from PIL import Image

from comfyui_icedit.runner import comfy_host
from comfyui_icedit.icedit_core.model_files import SMOKE_NODES_ENV
from icedit_testing import REPO
from icedit_testing.server_runs import default_sigint, leftovers_in

COUNT = 6  # enough for two workers to share a run and for an interruption to fall in its middle
COMMON = ["--smoke-test", "--steps", "1", "--quiet"]


# The byte comparisons below need every server to compute as the reference server (comfy_server) does, with
# torch's default of every core: its CPU matrix kernels round differently with another thread count, and without a
# GPU the runner gives each of N local servers cores / N threads (tests/core/test_server_threads.py).
SAME_THREADS_AS_THE_REFERENCE = {"OMP_NUM_THREADS": str(len(os.sched_getaffinity(0)))}


def run_cli(*args, timeout=900, env=None):
    return subprocess.run([sys.executable, "-m", "comfyui_icedit.runner.run_icedit", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **SAME_THREADS_AS_THE_REFERENCE, **(env or {})})


def start_cli(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "comfyui_icedit.runner.run_icedit", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=default_sigint,
                            env={**os.environ, "PYTHONUNBUFFERED": "1",
                                 **SAME_THREADS_AS_THE_REFERENCE, **(env or {})})


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    """COUNT small images in three forms: JSONL, CSV (paths relative to the manifest) and a folder with
    sidecar instructions. Ids are the file stems in all three; seeds only in the manifests (the folder uses
    --seed, so its items all get seed 42, like the rows without a seed)."""
    root = tmp_path_factory.mktemp("batch")
    images = root / "images"
    images.mkdir()
    rows = []
    for index in range(COUNT):
        width, height = 64 + 8 * (index % 4), 48 + 8 * (index % 3)
        image = Image.new("RGB", (width, height))
        image.putdata([((x * (index + 3)) % 256, (y * 11 + index * 20) % 256, (x + y) % 256)
                       for y in range(height) for x in range(width)])
        name = f"item{index:02d}"
        image.save(images / f"{name}.png")
        (images / f"{name}.txt").write_text(f"make it look like picture {index}\n")
        rows.append({"image": f"images/{name}.png", "instruction": f"make it look like picture {index}"})
    (root / "edits.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    with open(root / "edits.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "instruction"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def ledger(output) -> list[dict]:
    return [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]


def outputs(output) -> dict[str, bytes]:
    return {name: (output / name).read_bytes() for name in sorted(os.listdir(output)) if name.endswith(".png")}


@pytest.fixture(scope="module")
def sequential(comfy_server, manifests):
    """The reference: one server, one item after another (no Ray)."""
    output = manifests / "out-sequential"
    result = run_cli("--batch", manifests / "edits.jsonl", "--output", output, "--server", comfy_server.url, *COMMON)
    assert result.returncode == 0, result.stdout + result.stderr
    return output


def assert_complete_and_equal(output, reference):
    lines = ledger(output)
    assert sorted(line["id"] for line in lines) == [f"item{i:02d}" for i in range(COUNT)]  # each once
    assert all(line["status"] == "ok" for line in lines)
    produced, expected = outputs(output), outputs(reference)
    assert len(expected) == 2 * COUNT and produced == expected


def test_the_sequential_run_writes_every_edit_and_one_ledger_line_each(sequential):
    lines = ledger(sequential)
    assert len(lines) == COUNT and {line["status"] for line in lines} == {"ok"}
    for line in lines:
        assert line["outputs"] == [f"{line['id']}_comparison.png", f"{line['id']}_edited.png"]
        assert line["seed"] == 42 and line["workflow"] == "basic" and line["worker"] == "w1" and line["error"] is None
        with Image.open(sequential / f"{line['id']}_edited.png") as edited, \
                Image.open(os.path.join(os.path.dirname(sequential), line["image"])) as source:
            assert edited.size == source.size
    assert len(set(outputs(sequential).values())) == 2 * COUNT  # every edit different


def read_until(process, pattern, deadline, seen):
    """Lines of the runner's output until one matches; returns the match."""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r}; output:\n{''.join(seen)}")


def comfy_servers_under(folder) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if "main.py" in command and str(folder) in command:
            found.append(process)
    return found


def test_an_interrupted_ray_run_continues_with_no_duplicates_and_no_orphans_and_a_rerun_edits_nothing(
        sequential, manifests, tmp_path):
    """Two Ray workers take the CSV form; Ctrl-C after two items stops the run and every server it started; the
    same command again edits only the rest, and with both runs together every item is edited once, by both
    workers, with the sequential run's bytes; a third run finds nothing to edit."""
    output = manifests / "out-interrupted"
    temp = tmp_path / "runner-tmp"  # the servers' folders live here: a left-over process would name it
    temp.mkdir()
    command = ["--batch", manifests / "edits.csv", "--output", output, "--workers", 2, "--smoke-test",
               "--steps", "1"]
    process = start_cli(*command, env={"TMPDIR": str(temp)})
    seen, deadline = [], time.monotonic() + 600
    try:
        read_until(process, rf"\[2/{COUNT}\] ok item", deadline, seen)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    text = "".join(seen) + rest
    assert process.returncode == 130, text
    assert "Ray: 2 workers" in text
    assert "run the same command again" in rest
    finished = ledger(output)
    assert 2 <= len(finished) < COUNT and all(line["status"] == "ok" for line in finished)
    time.sleep(3)
    assert comfy_servers_under(temp) == []  # no ComfyUI left running
    assert [name for name in os.listdir(output) if ".partial" in name] == []
    again = run_cli(*command, "--quiet", env={"TMPDIR": str(temp)})
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{COUNT - len(finished)} edited, {len(finished)} already done, 0 failed" in again.stdout
    assert_complete_and_equal(output, sequential)
    assert {line["worker"] for line in ledger(output)} == {"w1", "w2"}  # both pulled work
    assert os.listdir(temp) == []  # every server folder removed
    third = run_cli(*command, "--quiet", env={"TMPDIR": str(temp)})
    assert third.returncode == 0, third.stdout + third.stderr
    assert f"0 edited, {COUNT} already done, 0 failed" in third.stdout
    assert len(ledger(output)) == COUNT


def test_running_servers_take_the_folder_form_and_one_without_the_pack_gets_no_items(
        sequential, manifests, comfy_server, smoke_models_dir):
    """--servers with two servers that have the pack and one that lacks it: the worker check names the bare
    one before work starts and it gets no items; the other two edit the folder form with the sequential run's
    bytes, both taking work, and a running server is used, never stopped."""
    second = comfy_host.ComfyProcess(comfyui_path=comfy_server.process.comfyui_path, python=sys.executable,
                                     env={SMOKE_NODES_ENV: "1"})
    second.extra_model_paths = comfy_host.write_extra_model_paths(
        os.path.join(second.workdir, "extra_model_paths.yaml"), os.path.join(REPO, ".host", "custom_nodes"),
        [smoke_models_dir])
    bare = comfy_host.ComfyProcess(comfyui_path=comfy_server.process.comfyui_path, python=sys.executable)  # no custom nodes
    # Started side by side: most of a start is single-threaded imports, so two take little longer than one. The
    # pool's threads live until the servers are stopped: a server dies with the thread that started it
    # (PR_SET_PDEATHSIG counts threads, not processes).
    pool = ThreadPoolExecutor(2)
    try:
        for started in [pool.submit(server.start) for server in (second, bare)]:
            started.result()
        output = manifests / "out-servers"
        # 127.0.0.1:PORT without a scheme is accepted as http.
        servers = f"{comfy_server.url},{second.url.replace('http://', '')},{bare.url}"
        result = run_cli("--batch", manifests / "images", "--output", output, "--servers", servers, *COMMON)
        assert result.returncode == 0, result.stdout + result.stderr
        assert re.search(rf"worker w3 on .*{re.escape(bare.url)}.* gets no items: .*does not have the ICEdit pack",
                         result.stdout), result.stdout
        assert_complete_and_equal(output, sequential)
        assert {line["worker"] for line in ledger(output)} == {"w1", "w2"}
        assert second.alive() and bare.alive()  # a running server is used, never stopped
    finally:
        second.cleanup()
        bare.cleanup()
        pool.shutdown()


def test_a_hung_server_is_restarted_after_the_item_timeout_and_leaves_no_temporary_folder(manifests, sequential,
                                                                                          tmp_path):
    """SIGSTOP freezes the server mid-run: the item runs past --item-timeout, the worker kills and restarts its
    server, the item goes back to the queue and every item still comes out as in the sequential run. This is
    also the check that a run with a server of its own leaves nothing in TMPDIR (its restart included): the
    other modes of that fault are in test_runner_faults.py."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    manifest = manifests / "two-to-hang.jsonl"
    manifest.write_text("".join((manifests / "edits.jsonl").read_text().splitlines(keepends=True)[:2]))
    output = manifests / "out-hung"
    process = start_cli("--batch", manifest, "--output", output, "--item-timeout", 15, "--smoke-test", "--steps", "1",
                        env={"TMPDIR": str(temp)})
    seen, deadline = [], time.monotonic() + 600
    try:
        pid = int(read_until(process, r"worker w1 ready .*ComfyUI pid (\d+)", deadline, seen).group(1))
        os.kill(pid, signal.SIGSTOP)
        rest, _ = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
        if psutil.pid_exists(pid):
            os.kill(pid, signal.SIGKILL)
    assert process.returncode == 0, "".join(seen) + rest
    lines = ledger(output)
    assert sorted(line["id"] for line in lines) == ["item00", "item01"]
    assert {line["status"] for line in lines} == {"ok"}
    reference = outputs(sequential)
    assert outputs(output) == {name: data for name, data in reference.items() if name[:6] in ("item00", "item01")}
    attempts = (output / "attempts.log").read_text()
    assert "restarted its ComfyUI server" in attempts, attempts
    assert leftovers_in(temp) == [], "the run left temporary folders behind"


RAY_CLUSTER_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
                   "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@pytest.fixture(scope="module")
def ray_cluster():
    """A cluster started with `ray start --head` (on loopback, as the README shows): its address. The last two
    tests of this module use it, so it runs only while they do."""
    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    port = comfy_host.free_port()
    env = {**os.environ, **RAY_CLUSTER_ENV}
    temp = tempfile.mkdtemp(prefix="icedit-rc-", dir="/tmp")  # short: Ray's socket paths live under it
    # --block: the head runs in the foreground and takes down what it started when terminated (no `ray stop`,
    # which would end every Ray process of this user).
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while subprocess.run([ray_bin, "status", f"--address=127.0.0.1:{port}"], capture_output=True,
                             env=env, timeout=60).returncode != 0:
            assert head.poll() is None and time.monotonic() < deadline, "the Ray head did not start"
            time.sleep(1)
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def test_an_existing_ray_cluster_runs_the_workers(manifests, sequential, ray_cluster):
    """--ray-address: the cluster takes the workers; with no --workers there is one per cluster GPU, here none,
    so one."""
    manifest = manifests / "two-for-cluster.jsonl"
    manifest.write_text("".join((manifests / "edits.jsonl").read_text().splitlines(keepends=True)[:2]))
    output = manifests / "out-cluster"
    result = run_cli("--batch", manifest, "--output", output, "--ray-address", ray_cluster, *COMMON,
                     env=RAY_CLUSTER_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ray: 1 workers" in result.stdout
    assert [(line["id"], line["status"]) for line in ledger(output)] == [("item00", "ok"), ("item01", "ok")]
    reference = outputs(sequential)
    assert outputs(output) == {k: v for k, v in reference.items() if k[:6] in ("item00", "item01")}


def test_a_killed_server_loses_no_item_and_a_corrupt_image_fails_alone(sequential, manifests, ray_cluster):
    """Two local Ray workers; w1's ComfyUI is killed after the first item: the worker restarts it and every
    item comes out as in the sequential run, but for a cut PNG that fails alone. The cluster of the test above
    is still up: --workers without --ray-address starts a Ray instance of its own beside it (a bare ray.init()
    would join the cluster `ray start` left, and refuse num_cpus there)."""
    broken = manifests / "images" / "broken.png"
    data = (manifests / "images" / "item00.png").read_bytes()
    broken.write_bytes(data[: len(data) // 2])  # a PNG cut in half
    manifest = manifests / "with-broken.jsonl"
    manifest.write_text((manifests / "edits.jsonl").read_text()
                        + json.dumps({"image": "images/broken.png", "instruction": "fix it"}) + "\n")
    output = manifests / "out-killed"
    process = start_cli("--batch", manifest, "--output", output, "--workers", 2, "--smoke-test", "--steps", "1",
                        env=RAY_CLUSTER_ENV)
    seen, deadline = [], time.monotonic() + 600
    try:
        pid = int(read_until(process, r"worker w1 ready .*ComfyUI pid (\d+)", deadline, seen).group(1))
        read_until(process, r"\] ok item", deadline, seen)
        os.kill(pid, signal.SIGKILL)  # w1's server dies, probably in the middle of its next item
        rest, _ = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
    text = "".join(seen) + rest
    assert process.returncode == 1, text  # one item failed: the broken one
    assert "Ray: 2 workers on 2 CPUs" in text  # its own instance, not the cluster
    lines = ledger(output)
    assert sorted(line["id"] for line in lines) == sorted([f"item{i:02d}" for i in range(COUNT)] + ["broken"])
    failed = [line for line in lines if line["status"] == "failed"]
    assert [line["id"] for line in failed] == ["broken"]
    assert "broken.png" in failed[0]["error"] and "truncated" in failed[0]["error"]
    assert outputs(output) == outputs(sequential)  # the restarted server edits byte for byte the same
    attempts = (output / "attempts.log").read_text()
    assert "restarted its ComfyUI server" in attempts or "died" in attempts, attempts
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
