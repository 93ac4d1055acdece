"""Refusals the runner owes a hostile-but-realistic user, each found by one: a decompression bomb in a manifest, ids
too long for a file name, two runs into one --output, a video h264 cannot save, --steps
past KSampler's limit, and temp folders of runs killed with SIGKILL (several setups at once:
tests/system/test_setup_script.py). Real files and processes; no ComfyUI is imported and no server is started."""
from __future__ import annotations

import http.server
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

import av
import numpy as np
import pytest
from PIL import Image

from comfyui_icedit.runner import comfy_host, engine, items, run_icedit, worker
from icedit_testing import REPO

LONGEST_PID = "4194304"  # Linux's largest pid_max: the longest `.partial-<pid>` a temp name can get


# -- helpers ----------------------------------------------------------------------------------------------------
def write_picture(path, size=(24, 16), seed=0) -> str:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return str(path)


def write_png_bomb(path, width=20000, height=20000) -> str:
    """A valid all-black 1-bit PNG: a few tens of KB on disk that decode to width x height pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row, packer = b"\0" * (1 + (width + 7) // 8), zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return str(path)


def write_clip(path, width, height, frames=3) -> str:
    """A lossless clip (FFV1 in Matroska: any frame size, unlike h264)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("ffv1", rate=8)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        for index in range(frames):
            image = np.full((height, width, 3), 40 * index, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def write_manifest(path, *rows) -> str:
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    return str(path)


def plan(work, output):
    """The engine's planning of `work` into `output`: (tasks to edit, summary, log lines)."""
    os.makedirs(output, exist_ok=True)
    lines, summary = [], engine.Summary(total=len(work))
    config = engine.RunConfig(output=str(output), seed=7)
    catalog = engine.Workflows(config.workflow)
    for item in work:
        engine._assign_workflow(item, config, catalog)
    todo = engine._plan(config, work, items.Ledger(str(output)), summary, lines.append, True, catalog)
    return todo, summary, lines


def runner(*args) -> list[str]:
    return [sys.executable, "-u", "-m", "comfyui_icedit.runner.run_icedit", *map(str, args)]


def runner_env(temp=None) -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1", **({"TMPDIR": str(temp)} if temp else {})}


def run_cli(*args, temp=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(runner(*args), capture_output=True, text=True, timeout=timeout, env=runner_env(temp),
                          cwd=REPO, check=False)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.fixture
def stalling_server():
    """Answers /system_stats as ComfyUI does and nothing else: a run against it has planned and then holds its
    --output for a minute (its wait for /object_info), with no ComfyUI anywhere."""
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/system_stats":
                release.wait(120)
                return
            body = b'{"system": {}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    release.set()
    server.shutdown()
    server.server_close()


def start_waiting_run(server, output, manifest, temp) -> subprocess.Popen:
    """A real run that has planned, holds its output folder and waits for its (stalling) server."""
    process = subprocess.Popen(runner("--server", server, "--smoke-test", "--output", output, "--batch", manifest),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=runner_env(temp),
                               cwd=REPO)
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "using the ComfyUI server" in line:
            return process
    process.wait()
    raise AssertionError("the first run never reached its server: " + "".join(seen))


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# -- 1. a decompression bomb -------------------------------------------------------------------------------------
def test_a_decompression_bomb_is_refused_naming_its_pixels_and_the_rows_around_it_are_planned(tmp_path):
    """Found: a 48 KB PNG of 20000x20000 pixels raised Pillow's DecompressionBombError out of upload_bytes, which
    stopped planning, so the good rows of the manifest were never edited."""
    bomb = write_png_bomb(tmp_path / "bomb.png")
    assert os.path.getsize(bomb) < 100_000
    with pytest.raises(items.ItemError) as refused:
        items.upload_bytes(bomb)
    assert str(refused.value).startswith(bomb) and "400000000 pixels" in str(refused.value)
    assert "\n" not in str(refused.value)

    manifest = write_manifest(tmp_path / "edits.jsonl",
                              {"image": write_picture(tmp_path / "before.png", seed=1), "instruction": "red"},
                              {"image": "bomb.png", "instruction": "red"},
                              {"image": write_picture(tmp_path / "after.png", seed=2), "instruction": "red"})
    todo, summary, lines = plan(items.read_batch(manifest), tmp_path / "out")
    assert [job.id for job in todo] == ["before", "after"]
    assert summary.failed == 1 and summary.failed_ids == ["bomb"]
    [line] = [line for line in lines if "bomb" in line]
    assert "edits.jsonl line 2" in line and bomb in line and "400000000 pixels" in line and "\n" not in line
    [entry] = [json.loads(text) for text in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert entry["id"] == "bomb" and entry["status"] == "failed" and "400000000 pixels" in entry["error"]


# -- 2. ids too long for a file name ------------------------------------------------------------------------------
def longest_names(item_id: str, source: str) -> list[str]:
    """Every file an item's id names, while written: its results, a multi-turn run's turns, their temp names."""
    names = items.result_names(item_id, source) + [f"{item_id}_turns_000001_.png"]
    return names + [f"{name}.partial-{LONGEST_PID}" for name in names]


def test_a_long_id_is_refused_and_a_long_file_name_gives_a_short_id_whose_files_fit_255_bytes(tmp_path):
    """Found: an id of 230-300 characters (or a file name it came from) failed with 'File name too long' when its
    `<id>_comparison.png.partial-<pid>` was written, after the edit had run, and that aborted the batch."""
    long_ascii = "p" * 240 + ".png"  # 244 bytes: a legal file name
    long_wide = "写" * 80 + ".png"  # 80 characters, 244 bytes
    twins = ["q" * 230 + "-first.png", "q" * 230 + "-second.png"]  # alike far past where the id is cut
    for name in (long_ascii, long_wide, *twins):
        write_picture(tmp_path / name)
    rows = [{"image": long_ascii, "instruction": "red"}, {"image": long_wide, "instruction": "red"},
            {"image": twins[0], "instruction": "red"}, {"image": twins[1], "instruction": "red"},
            {"image": long_ascii, "instruction": "red", "id": "i" * 260},
            {"image": long_ascii, "instruction": "red", "id": "日" * 70}]  # 70 characters, 210 bytes
    work = items.read_batch(write_manifest(tmp_path / "edits.jsonl", *rows))

    refused = work[4:]
    for item, row, size in zip(refused, rows[4:], (260, 210), strict=True):
        assert item.error is not None, item.id
        assert item.error.startswith(f"edits.jsonl line {rows.index(row) + 1}: id ")
        assert f"{size} bytes" in item.error and str(items.MAX_ID_BYTES) in item.error and "\n" not in item.error
    accepted = work[:4]
    assert [item.error for item in accepted] == [None] * 4
    assert len({item.id for item in accepted}) == 4
    assert accepted[0].id.startswith("p" * 100) and accepted[1].id.startswith("写" * 30)
    output = tmp_path / "out"
    output.mkdir()
    for item in accepted:
        assert len(item.id.encode()) <= items.MAX_ID_BYTES
        for name in longest_names(item.id, item.image):
            assert len(name.encode()) <= 255, name
        for name in items.result_names(item.id, item.image) + [f"{item.id}_turns_000001_.png"]:
            items.write_atomically(str(output / name), b"written")  # the file system takes each name
    assert len(os.listdir(output)) == 4 * 3
    # The same image listed twice gets a second id from the same cut name (`-2`): it fits as well.
    again = items.from_rows([{"image": long_ascii, "instruction": "a"}, {"image": long_ascii, "instruction": "b"}],
                            str(tmp_path), ["#1", "#2"])
    assert again[1].id == again[0].id + "-2" and len(again[1].id.encode()) <= items.MAX_ID_BYTES


# -- 3. two runs into one output folder ---------------------------------------------------------------------------
def test_a_second_run_into_the_same_output_is_refused_naming_the_first_runs_pid(tmp_path, stalling_server):
    """Found: two runs of one manifest into one --output both went ahead and overwrote each other's edits and
    ledger lines. A holder killed with SIGKILL must not leave the folder locked."""
    manifest = write_manifest(tmp_path / "edits.jsonl",
                              {"image": write_picture(tmp_path / "photo.png"), "instruction": "red"})
    output, temp = tmp_path / "out", tmp_path / "tmp"
    temp.mkdir()
    first = start_waiting_run(stalling_server, output, manifest, temp)
    try:
        started = time.monotonic()
        second = run_cli("--server", stalling_server, "--smoke-test", "--output", output, "--batch", manifest,
                         temp=temp)
        assert time.monotonic() - started < 30, "the second run waited for the server instead of being refused"
        assert second.returncode == 2, second.stdout + second.stderr
        [line] = error_lines(second.stderr)
        assert line.startswith("error: ") and str(output) in line and f"pid {first.pid}" in line, line
        assert "already done" not in second.stdout
        with pytest.raises(engine.RunError, match=f"pid {first.pid}"):
            engine.run(engine.RunConfig(output=str(output), smoke_test=True), [])
    finally:
        first.kill()  # SIGKILL: no cleanup of its own runs
        first.communicate(timeout=30)
    assert os.path.exists(output / engine.LOCK_FILE)  # left behind, but no longer locked
    bad = items.from_edit_pairs([(str(tmp_path / "missing.png"), "red")])
    summary = engine.run(engine.RunConfig(output=str(output), smoke_test=True), bad, log=lambda line: None)
    assert summary.failed == 1 and not os.path.exists(output / engine.LOCK_FILE)


def test_the_output_lock_is_released_when_a_run_ends_however_it_ends(tmp_path):
    output = str(tmp_path)
    with pytest.raises(KeyboardInterrupt), engine.output_lock(output):
        raise KeyboardInterrupt
    with (engine.output_lock(output), pytest.raises(engine.RunError, match=f"pid {os.getpid()}"),
          engine.output_lock(output)):
        pass
    assert os.listdir(output) == []


# -- 5. a failure no retry can mend -------------------------------------------------------------------------------
def test_a_node_refusing_its_input_is_final_and_a_crash_or_memory_error_is_not():
    """How a node's ValueError reaches the runner: ComfyUI's execution_error event (or the history's copy of it)
    with the exception's type name. tests/system/test_runner_refusals_server.py runs it against a real server."""
    event = {"prompt_id": "p", "node_id": "3", "node_type": "ICEditDiptych", "exception_type": "ValueError",
             "exception_message": "panel width 100 must be a positive multiple of 16\n"}
    error = comfy_host.NodeFailed.from_event(event)
    assert isinstance(error, comfy_host.ComfyError) and error.exception_type == "ValueError"
    assert str(error) == ("node 3 (ICEditDiptych) failed: ValueError: panel width 100 must be a positive multiple "
                          "of 16")
    for name in ("ValueError", "av.error.ValueError"):
        assert worker.is_input_fault(name), name
    for name in ("RuntimeError", "torch.OutOfMemoryError", "av.error.ExternalError", "OSError", ""):
        assert not worker.is_input_fault(name), name


# -- 6. a video h264 cannot save ---------------------------------------------------------------------------------
def test_a_video_with_an_odd_frame_size_is_refused_at_planning_naming_the_size(tmp_path):
    """Found: a 99x81 clip was edited frame by frame and then failed in Save Video with avcodec_open2("libx264"),
    which does not say that h264 needs an even width and height (and then it was retried twice)."""
    odd = write_clip(tmp_path / "odd.mkv", 99, 81)
    even = write_clip(tmp_path / "even.mkv", 98, 80)
    with pytest.raises(items.ItemError) as refused:
        items.upload_bytes(odd)
    assert str(refused.value).startswith(odd) and "99x81" in str(refused.value) and "even" in str(refused.value)
    assert items.upload_bytes(even)[1] == ".mkv"
    work = items.from_edit_pairs([(odd, "snow"), (even, "snow")], "--video", items.VIDEO_WORKFLOW)
    todo, summary, lines = plan(work, tmp_path / "out")
    assert [job.id for job in todo] == ["even"] and summary.failed_ids == ["odd"]
    [line] = [line for line in lines if "odd" in line]
    assert "--video #1" in line and "99x81" in line and "\n" not in line


# -- 7. one bound on steps ---------------------------------------------------------------------------------------
def test_steps_have_one_upper_bound_on_the_command_line_and_in_a_manifest(tmp_path, capsys):
    """Found: --steps had no upper bound, while a manifest's steps stopped at 10000."""
    assert items.MAX_STEPS == 10000  # KSampler's own limit
    for option in ("--steps", "--early-steps"):
        assert getattr(run_icedit.parser().parse_args([option, str(items.MAX_STEPS)]),
                       option[2:].replace("-", "_")) == items.MAX_STEPS
        with pytest.raises(SystemExit):
            run_icedit.parser().parse_args([option, str(items.MAX_STEPS + 1)])
        assert f"{option}: {items.MAX_STEPS + 1} is outside [1, {items.MAX_STEPS}]" in capsys.readouterr().err
    [row] = items.from_rows([{"image": write_picture(tmp_path / "a.png"), "instruction": "red",
                              "steps": items.MAX_STEPS + 1}], str(tmp_path), ["m.jsonl line 1"])
    assert row.error == f"m.jsonl line 1: steps = {items.MAX_STEPS + 1} is outside [1, {items.MAX_STEPS}]"


# -- 8. temp folders of runs killed with SIGKILL ------------------------------------------------------------------
def test_temp_folders_whose_owner_is_gone_are_removed_and_no_other(tmp_path):
    gone, alive = dead_pid(), subprocess.Popen(["sleep", "60"])
    try:
        names = {f"icedit-comfy-{gone}-ab12_xyz": False, f"icedit-run-{gone}-q9w8e7r6": False,
                 f"icedit-comfy-{alive.pid}-ab12_xyz": True, f"icedit-run-{os.getpid()}-zz": True,
                 "icedit-comfy-k2j3h4g5": True,  # an older version's: no pid, nothing says whose it is
                 f"icedit-ray-{gone}-abc": True, f"other-{gone}-abc": True}
        for name in names:
            (tmp_path / name).mkdir()
            (tmp_path / name / "comfyui.db").write_bytes(b"x")
        (tmp_path / f"icedit-run-{gone}-file").write_text("a file, not a folder")
        removed = comfy_host.remove_orphaned_temp_dirs(str(tmp_path))
        assert sorted(removed) == sorted(str(tmp_path / name) for name, kept in names.items() if not kept)
        assert sorted(os.listdir(tmp_path)) == sorted([name for name, kept in names.items() if kept]
                                                      + [f"icedit-run-{gone}-file"])
    finally:
        alive.kill()
        alive.wait()


def test_a_server_folder_is_named_with_its_owner_and_sweeps_the_dead_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / f"icedit-comfy-{dead_pid()}-leftover").mkdir()
    server = comfy_host.ComfyProcess(comfyui_path=str(tmp_path / "no-comfyui"))
    try:
        [name] = os.listdir(tmp_path)
        assert name.startswith(f"icedit-comfy-{os.getpid()}-") and server.workdir == str(tmp_path / name)
    finally:
        server.cleanup()
    assert os.listdir(tmp_path) == []


def test_the_next_run_removes_what_a_sigkilled_run_left_in_the_temp_folder(tmp_path, stalling_server):
    """Found: a runner killed with SIGKILL left its icedit-run-* (and its servers' icedit-comfy-*) folders in the
    temp folder for good."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    manifest = write_manifest(tmp_path / "edits.jsonl",
                              {"image": write_picture(tmp_path / "photo.png"), "instruction": "red"})
    killed = start_waiting_run(stalling_server, tmp_path / "out", manifest, temp)
    killed.kill()
    killed.communicate(timeout=30)
    [left] = os.listdir(temp)
    assert left.startswith(f"icedit-run-{killed.pid}-")
    alive = subprocess.Popen(["sleep", "60"])
    try:
        (temp / f"icedit-comfy-{alive.pid}-inuse").mkdir()
        bad = write_manifest(tmp_path / "bad.jsonl", {"image": "missing.png", "instruction": "red"})
        result = run_cli("--smoke-test", "--output", tmp_path / "out2", "--batch", bad, temp=temp)
        assert result.returncode == 1, result.stdout + result.stderr
        assert os.listdir(temp) == [f"icedit-comfy-{alive.pid}-inuse"]
    finally:
        alive.kill()
        alive.wait()
