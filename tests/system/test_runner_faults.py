"""Faults users met with the old runner, replayed against the new one: real runner processes
(python -m comfyui_icedit.runner.run_icedit), a real ComfyUI server, real signals. Nothing is mocked.

Each test names the fault it guards against. Timings are generous (the smoke-test models sample slowly on a
busy CPU), but every wait is bounded."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
from comfyui_icedit.runner import prompt as prompts
from PIL import Image
from icedit_testing import REPO
from icedit_testing.server_runs import default_sigint, leftovers_in

RUN_TIMEOUT = 600  # one whole runner process, at most (a busy 2-core machine samples the smoke models slowly)


# -- helpers ------------------------------------------------------------------------------------------------------
def runner_env(**extra) -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}


def runner_command(*args) -> list[str]:
    return [sys.executable, "-u", "-m", "comfyui_icedit.runner.run_icedit", *map(str, args)]


def run_cli(*args, timeout=RUN_TIMEOUT, env=None, cwd=None) -> subprocess.CompletedProcess:
    """The runner as a user runs it, to the end."""
    return subprocess.run(runner_command(*args), capture_output=True, text=True, timeout=timeout, check=False,
                          env=env or runner_env(), cwd=cwd or REPO)


def write_source(path, width=100, height=70, variant=0) -> str:
    """A deterministic, non-flat test picture; `variant` gives a visibly different one of the same size."""
    image = Image.new("RGB", (width, height))
    if variant == 0:
        pixels = [((x * 5) % 256, (y * 7) % 256, 128) for y in range(height) for x in range(width)]
    else:
        pixels = [(200 - (y * 3) % 200, (x * 11 + variant * 40) % 256, (x * y) % 256)
                  for y in range(height) for x in range(width)]
    image.putdata(pixels)
    image.save(path)
    return str(path)


def read_ledger(output) -> list[dict]:
    path = os.path.join(output, "results.jsonl")
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def last_state(output) -> dict[str, dict]:
    return {entry["id"]: entry for entry in read_ledger(output)}


def is_comfyui(process: psutil.Process) -> bool:
    try:
        return any(part.endswith("main.py") for part in process.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return False


def is_gone(process: psutil.Process) -> bool:
    """Exited (a zombie waiting to be reaped counts: it runs nothing and holds no memory or port)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(processes, timeout) -> list[psutil.Process]:
    """The processes still alive after up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    alive = [p for p in processes if not is_gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.25)
        alive = [p for p in alive if not is_gone(p)]
    return alive


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


class Runner:
    """A runner process started in the background; its stdout and stderr are read line by line by threads, so
    a test can wait for a line with a deadline, and its ComfyUI children are tracked by process id."""

    def __init__(self, *args, env=None, cwd=None):
        self.process = subprocess.Popen(runner_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=env or runner_env(), cwd=cwd or REPO,
                                        start_new_session=False, preexec_fn=default_sigint)
        self.ps = psutil.Process(self.process.pid)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.changed = threading.Condition()
        self.seen_comfyui: dict[int, psutil.Process] = {}
        self.threads = [threading.Thread(target=self._pump, args=(stream, lines), daemon=True)
                        for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))]
        for thread in self.threads:
            thread.start()

    def _pump(self, stream, lines) -> None:
        for line in stream:
            with self.changed:
                lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def output(self) -> str:
        with self.changed:
            return "\n".join(self.stdout) + "\n--- stderr ---\n" + "\n".join(self.stderr)

    def wait_for_line(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line in self.stdout:
                    if text in line:
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None and not any(t.is_alive() for t in self.threads)):
                    raise AssertionError(f"no line with {text!r} within {timeout} s (exit code "
                                         f"{self.process.poll()}):\n{self.output()}")
                self.changed.wait(min(remaining, 0.5))

    def comfyui_children(self) -> list[psutil.Process]:
        try:
            children = self.ps.children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        for child in children:
            if child.pid not in self.seen_comfyui and is_comfyui(child):
                self.seen_comfyui[child.pid] = child
        return [child for child in self.seen_comfyui.values() if not is_gone(child)]

    def wait_for_comfyui(self, timeout: float, poll: float = 0.05) -> psutil.Process:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            children = self.comfyui_children()
            if children:
                return children[0]
            if self.process.poll() is not None:
                break
            time.sleep(poll)
        raise AssertionError(f"the runner started no ComfyUI (main.py) within {timeout} s:\n{self.output()}")

    def wait(self, timeout: float) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the runner did not exit within {timeout} s:\n{self.output()}") from None
        for thread in self.threads:
            thread.join(timeout=10)
        return code

    def kill_leftovers(self) -> None:
        """Teardown: this runner and the ComfyUI processes it started, by their ids, whatever the test left."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        for child in self.seen_comfyui.values():
            if not is_gone(child):
                try:
                    child.kill()
                except psutil.NoSuchProcess:
                    pass


def run_watching(*args, timeout=120, env=None, cwd=None) -> tuple[int, str, str, list[str]]:
    """Runs the CLI to the end while watching its children: returns (exit code, stdout, stderr, the command
    lines of every ComfyUI server it started)."""
    runner = Runner(*args, env=env, cwd=cwd)
    try:
        deadline = time.monotonic() + timeout
        while runner.process.poll() is None and time.monotonic() < deadline:
            runner.comfyui_children()
            time.sleep(0.05)
        code = runner.wait(max(1.0, deadline - time.monotonic()))
        return code, "\n".join(runner.stdout), "\n".join(runner.stderr), \
            [" ".join(p.cmdline()) if not is_gone(p) else str(p.pid) for p in runner.seen_comfyui.values()]
    finally:
        runner.kill_leftovers()


def log_of(process: psutil.Process) -> str:
    """The file a ComfyUI server's stdout goes to (its log)."""
    return os.readlink(f"/proc/{process.pid}/fd/1")


def wait_for_sampling(log_path: str, steps: int, timeout: float, start_offset: int = 0) -> None:
    """Until the server's log shows the sampler past its first step of `steps` (tqdm writes 'n/steps [')."""
    pattern = re.compile(rf"\|\s*[1-9]\d*/{steps} \[")
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            handle.seek(start_offset)
            text = handle.read()
        if pattern.search(text):
            return
        time.sleep(0.5)
    raise AssertionError(f"the sampler did not start {steps} steps within {timeout} s; log tail:\n{text[-3000:]}")


def queue_of(server) -> tuple[list, list]:
    queue = server.get_json("/queue", timeout=10)
    return queue.get("queue_running", []), queue.get("queue_pending", [])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def other_clients_prompt(server, source_path, steps=1) -> dict:
    """A prompt as another ComfyUI client (a user's frontend) would queue it: the shipped basic workflow on the
    smoke-test models."""
    with open(source_path, "rb") as handle:
        name = server.upload_image(handle.read())
    api = prompts.smoke_prompt(prompts.to_api(prompts.load_workflow("basic"), server.object_info()))
    return prompts.with_inputs(api, image=name, instruction="make the sky red", seed=3, steps=steps, panel_width=64)


# -- 1. uploads never collide -------------------------------------------------------------------------------------
def test_two_images_with_the_same_name_in_two_folders_are_edited_each_from_its_own_pixels(comfy_server, tmp_path):
    """Old fault: both uploaded as 'photo.png' on the server, the second overwrote the first, and both items
    were edited from the same picture."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_source(tmp_path / "a" / "photo.png", variant=0)
    second = write_source(tmp_path / "b" / "photo.png", variant=1)
    output = tmp_path / "out"
    result = run_cli("--server", comfy_server.url, "--smoke-test", "--steps", 1, "--quiet", "--output", output,
                     "--edit", first, "make the sky red", "--edit", second, "make the sky red")
    assert result.returncode == 0, result.stdout + result.stderr
    state = last_state(output)
    assert set(state) == {"photo", "photo-2"}
    assert (state["photo"]["image"], state["photo-2"]["image"]) == (first, second)
    assert all(entry["status"] == "ok" for entry in state.values())
    edited = [(output / f"{item}_edited.png").read_bytes() for item in ("photo", "photo-2")]
    assert edited[0] != edited[1]
    for item, source in (("photo", first), ("photo-2", second)):
        with Image.open(source) as before, Image.open(output / f"{item}_comparison.png") as comparison:
            assert comparison.size == (2 * before.width, before.height)
            left = comparison.convert("RGB").crop((0, 0, before.width, before.height))
            assert left.tobytes() == before.convert("RGB").tobytes(), f"{item}'s comparison shows another source"
        with Image.open(output / f"{item}_edited.png") as after:
            assert after.size == (100, 70)


def test_two_runners_sharing_a_busy_server_never_edit_each_others_upload(comfy_server, tmp_path):
    """The same fault where it bites hardest: two users' runners on one shared server, each with its own
    photo.png, both prompts waiting behind a third client's. An upload named after the file would let the
    second upload replace the first before the first prompt loads it. (Within one run a single worker uploads
    and runs one item at a time, so only concurrent clients can expose such a collision.)"""
    blocker_source = write_source(tmp_path / "blocker.png", variant=3)
    status, raw = comfy_server.post_json("/prompt", {"prompt": other_clients_prompt(
        comfy_server, blocker_source, steps=300), "client_id": "other"})
    assert status == 200, raw
    blocker = json.loads(raw)["prompt_id"]
    runners = []
    try:
        sources, outputs = [], []
        for index in range(2):
            (tmp_path / f"user{index}").mkdir()
            sources.append(write_source(tmp_path / f"user{index}" / "photo.png", variant=index))
            outputs.append(tmp_path / f"out{index}")
            runners.append(Runner("--server", comfy_server.url, "--smoke-test", "--steps", 1, "--quiet",
                                  "--output", outputs[-1], "--edit", sources[-1], "make the sky red", cwd=tmp_path))
        # Both runners' prompts are queued behind the blocker, so both uploads happened before either ran.
        deadline = time.monotonic() + 300
        waiting = []
        while time.monotonic() < deadline:
            running, pending = queue_of(comfy_server)
            waiting = [item[1] for item in pending if item[3].get("client_id") != "other"]
            if len(waiting) == 2:
                break
            assert [r for r in runners if r.process.poll() is not None] == [], \
                "\n\n".join(r.output() for r in runners)
            time.sleep(0.25)
        assert len(waiting) == 2, "both runners' prompts never waited together"
        assert blocker in {item[1] for item in running}
        comfy_server.post_json("/interrupt", {"prompt_id": blocker})
        for runner in runners:
            assert runner.wait(timeout=300) == 0, runner.output()
        edited = []
        for source, output in zip(sources, outputs, strict=True):
            with Image.open(source) as before, Image.open(output / "photo_comparison.png") as comparison:
                left = comparison.convert("RGB").crop((0, 0, before.width, before.height))
                assert left.tobytes() == before.convert("RGB").tobytes(), \
                    f"{output} shows another user's picture as its source"
            edited.append((output / "photo_edited.png").read_bytes())
        assert edited[0] != edited[1]
    finally:
        for runner in runners:
            runner.kill_leftovers()
        comfy_server.post_json("/interrupt", {"prompt_id": blocker})


# -- 2. signals to a runner that started its own server -----------------------------------------------------------
def runner_with_own_server(tmp_path, steps):
    """A runner that starts its own ComfyUI, with its temporary folders in a folder of the test's."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    runner = Runner("--smoke-test", "--steps", steps, "--quiet", "--output", tmp_path / "out",
                    "--edit", write_source(tmp_path / "photo.png"), "make the sky red",
                    env=runner_env(TMPDIR=str(temp)), cwd=tmp_path)
    return runner, temp


def test_sigterm_while_sampling_and_sigkill_each_stop_the_runners_comfyui(tmp_path):
    """Two old faults, on two runners started at once (their servers start side by side: most of a start is
    single-threaded imports, so two take little longer than one on two cores):
    - `kill <runner>` (SIGTERM, as systemd, docker stop or a batch scheduler send it) left the ComfyUI server
      running, holding memory and a port;
    - a runner killed outright (SIGKILL, the OOM killer, a Ray actor's death) orphaned ComfyUI. Nothing in the
      runner can run then; the kernel must end the server (PR_SET_PDEATHSIG)."""
    (tmp_path / "term").mkdir()
    (tmp_path / "kill").mkdir()
    terminated, temp = runner_with_own_server(tmp_path / "term", steps=200)
    killed, _ = runner_with_own_server(tmp_path / "kill", steps=200)  # its temp folders stay under tmp_path
    try:
        killed.wait_for_line("worker w1 ready", timeout=300)
        orphan = killed.wait_for_comfyui(timeout=10)
        killed.process.kill()
        assert killed.wait(timeout=30) == -signal.SIGKILL
        assert wait_gone([orphan], timeout=30) == [], f"ComfyUI (pid {orphan.pid}) outlived its killed runner"

        terminated.wait_for_line("worker w1 ready", timeout=300)
        server = terminated.wait_for_comfyui(timeout=10)
        wait_for_sampling(log_of(server), 200, timeout=300)
        signalled = time.monotonic()
        terminated.process.send_signal(signal.SIGTERM)
        code = terminated.wait(timeout=60)
        assert code == 130, terminated.output()
        assert "interrupted" in "\n".join(terminated.stderr)
        assert wait_gone([server], timeout=max(1.0, 30 - (time.monotonic() - signalled))) == [], \
            f"ComfyUI (pid {server.pid}) still runs after the runner got SIGTERM"
        assert leftovers_in(temp) == [], "the interrupted runner left temporary folders behind"
    finally:
        terminated.kill_leftovers()
        killed.kill_leftovers()


def test_ctrl_c_while_the_server_starts_stops_its_comfyui(tmp_path):
    """Old fault: Ctrl-C while ComfyUI was still starting (the slowest part) left the half-started server
    behind, because the runner only stopped servers it had seen answer."""
    runner, temp = runner_with_own_server(tmp_path, steps=1)
    try:
        server = runner.wait_for_comfyui(timeout=180, poll=0.02)
        assert not any("ready" in line for line in runner.stdout), "too late: the server was already up"
        signalled = time.monotonic()
        os.kill(runner.process.pid, signal.SIGINT)  # to the runner alone, as a terminal's Ctrl-C would reach it
        code = runner.wait(timeout=60)
        assert code == 130, runner.output()
        assert wait_gone([server], timeout=max(1.0, 30 - (time.monotonic() - signalled))) == [], \
            f"ComfyUI (pid {server.pid}) still runs after Ctrl-C during its start"
        assert runner.comfyui_children() == []
        assert leftovers_in(temp) == [], "the interrupted runner left temporary folders behind"
    finally:
        runner.kill_leftovers()


# -- 3. an interrupted runner takes back its own prompts on a shared server, and only its own ---------------------
def test_ctrl_c_on_a_shared_server_cancels_only_the_runners_own_prompt(comfy_server, tmp_path):
    """Old fault: after Ctrl-C the runner's prompt kept sampling on the shared server for minutes (or the
    runner cleared the whole queue, other users' prompts included)."""
    source = write_source(tmp_path / "photo.png", variant=2)
    log_start = os.path.getsize(comfy_server.process.log_path)
    running, pending = queue_of(comfy_server)
    assert running == [] and pending == [], "the shared server is busy before the test"
    runner = Runner("--server", comfy_server.url, "--smoke-test", "--steps", 300, "--quiet",
                    "--output", tmp_path / "out", "--edit", source, "make the sky red", cwd=tmp_path)
    try:
        deadline = time.monotonic() + 300
        own = None
        while own is None and time.monotonic() < deadline:
            running, _ = queue_of(comfy_server)
            own = next((item[1] for item in running if item[3].get("client_id") != "other"), None)
            if own is None:
                assert runner.process.poll() is None, runner.output()
                time.sleep(0.25)
        assert own is not None, f"the runner's prompt never ran:\n{runner.output()}"
        # Another client queues a prompt now: it waits behind the runner's.
        status, raw = comfy_server.post_json("/prompt", {"prompt": other_clients_prompt(
            comfy_server, write_source(tmp_path / "other.png", variant=3)), "client_id": "other"})
        assert status == 200, raw
        other = json.loads(raw)["prompt_id"]
        running, pending = queue_of(comfy_server)
        assert [item[1] for item in running] == [own] and [item[1] for item in pending] == [other]
        wait_for_sampling(comfy_server.process.log_path, 300, timeout=300, start_offset=log_start)

        os.kill(runner.process.pid, signal.SIGINT)
        assert runner.wait(timeout=60) == 130, runner.output()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            running, pending = queue_of(comfy_server)
            if own not in {item[1] for item in running + pending}:
                break
            time.sleep(0.25)
        assert own not in {item[1] for item in running + pending}, \
            "the interrupted runner's prompt still runs or waits on the shared server 20 s later"
        entry = comfy_server.history(own)
        assert entry is None or entry["status"].get("status_str") != "success"  # it was stopped, not finished

        # The other client's prompt was left alone: it runs to success.
        deadline = time.monotonic() + 300
        entry = None
        while time.monotonic() < deadline:
            entry = comfy_server.history(other)
            if entry is not None and entry["status"].get("completed") is not None:
                break
            time.sleep(0.5)
        assert entry is not None, "the other client's prompt never ran: the runner took it out of the queue"
        assert entry["status"]["status_str"] == "success", entry["status"]
        assert queue_of(comfy_server) == ([], [])
    finally:
        runner.kill_leftovers()
        comfy_server.post_json("/queue", {"clear": True})


def sampler_step(log_path: str, steps: int, start_offset: int = 0) -> int:
    """The highest step of a `steps`-step sampler the server's log shows after `start_offset` (0: none yet)."""
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        handle.seek(start_offset)
        return max((int(n) for n in re.findall(rf"(\d+)/{steps} \[", handle.read())), default=0)


def test_ctrl_c_while_queued_behind_another_client_deletes_only_the_runners_prompt(comfy_server, tmp_path):
    """The other half of the same fault: the runner's prompt still waits behind another client's running one.
    Ctrl-C must delete the runner's queued prompt and leave the other client's running prompt alone (no
    global /interrupt, no queue clear)."""
    steps = 2000  # the other client's long prompt; the test interrupts it itself at the end
    log_start = os.path.getsize(comfy_server.process.log_path)
    assert queue_of(comfy_server) == ([], []), "the shared server is busy before the test"
    status, raw = comfy_server.post_json("/prompt", {"prompt": other_clients_prompt(
        comfy_server, write_source(tmp_path / "other.png", variant=5), steps=steps), "client_id": "other"})
    assert status == 200, raw
    other = json.loads(raw)["prompt_id"]
    runner = None
    try:
        source = write_source(tmp_path / "photo.png", variant=6)
        runner = Runner("--server", comfy_server.url, "--smoke-test", "--steps", 1, "--quiet",
                        "--output", tmp_path / "out", "--edit", source, "make the sky red", cwd=tmp_path)
        deadline = time.monotonic() + 300
        own = []
        while not own and time.monotonic() < deadline:
            running, pending = queue_of(comfy_server)
            own = [item[1] for item in pending if item[3].get("client_id") != "other"]
            if not own:
                assert runner.process.poll() is None, runner.output()
                time.sleep(0.25)
        assert len(own) == 1, f"the runner's prompt never waited in the queue:\n{runner.output()}"
        assert [item[1] for item in running] == [other]
        runner.wait_for_line("waiting behind 1 other prompts", timeout=30)  # the user is told why nothing moves
        wait_for_sampling(comfy_server.process.log_path, steps, timeout=300, start_offset=log_start)

        os.kill(runner.process.pid, signal.SIGINT)
        assert runner.wait(timeout=60) == 130, runner.output()
        running, pending = queue_of(comfy_server)
        assert [item[1] for item in pending] == [], "the interrupted runner's prompt is still queued"
        assert comfy_server.history(own[0]) is None, "the runner's queued prompt ran after all"
        # The other client's prompt goes on sampling: its step count still grows.
        reached = sampler_step(comfy_server.process.log_path, steps, log_start)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and sampler_step(comfy_server.process.log_path, steps, log_start) < reached + 2:
            time.sleep(0.5)
        running, _ = queue_of(comfy_server)
        assert [item[1] for item in running] == [other], "the other client's running prompt was stopped"
        assert sampler_step(comfy_server.process.log_path, steps, log_start) >= reached + 2, \
            "the other client's prompt stopped sampling when the runner was interrupted"
    finally:
        if runner is not None:
            runner.kill_leftovers()
        comfy_server.post_json("/queue", {"delete": [other]})
        comfy_server.post_json("/interrupt", {"prompt_id": other})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and queue_of(comfy_server) != ([], []):
            time.sleep(0.5)


# -- 4. servers that are not there, or not ComfyUI ----------------------------------------------------------------
def test_a_server_that_does_not_answer_is_a_one_line_error_naming_it(tmp_path):
    """Three spellings of a server that refuses connections. The runner waits some seconds for a server that
    may still be starting before it gives up, so the three run side by side (their waits overlap); each on its
    own output folder, as one run holds its folder's lock."""
    source = write_source(tmp_path / "photo.png")
    variants = [("http://127.0.0.1:9", []), ("127.0.0.1:9", []), ("127.0.0.1:9", ["--smoke-test"])]

    def attempt(index, url, extra):
        started = time.monotonic()
        result = run_cli("--server", url, *extra, "--output", tmp_path / f"out{index}", "--edit", source,
                         "make the sky red", timeout=60, cwd=tmp_path)
        return result, time.monotonic() - started

    with ThreadPoolExecutor(len(variants)) as pool:
        finished = list(pool.map(lambda args: attempt(*args), [(i, *v) for i, v in enumerate(variants)]))
    for (url, extra), (result, took) in zip(variants, finished, strict=True):
        what = f"--server {url} {' '.join(extra)}: "
        assert result.returncode == 2, what + result.stdout + result.stderr
        assert took < 20, f"{what}took {took:.1f} s"
        lines = error_lines(result.stderr)
        assert len(lines) == 1, what + result.stderr
        assert "127.0.0.1:9" in lines[0] and "Traceback" not in result.stderr, what + result.stderr


@pytest.mark.parametrize("extra", [[], ["--smoke-test"]])
def test_a_web_server_that_is_not_comfyui_is_named_as_such(tmp_path, extra):
    empty = tmp_path / "www"
    empty.mkdir()
    port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=empty,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        source = write_source(tmp_path / "photo.png")
        result = run_cli("--server", f"http://127.0.0.1:{port}", *extra, "--output", tmp_path / "out",
                         "--edit", source, "make the sky red", timeout=60, cwd=tmp_path)
    finally:
        web.terminate()
        web.wait(timeout=10)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "not a ComfyUI server" in lines[0]
    assert "Traceback" not in result.stderr


# -- 5. option values ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("option, value", [("--steps", "0"), ("--panel-width", "0"), ("--candidates", "0"),
                                           ("--early-steps", "0"), ("--seed", "-1")])
def test_an_option_value_out_of_range_is_refused_before_anything_starts(tmp_path, option, value):
    """Old fault: --steps 0 or --panel-width 0 went through to ComfyUI, which failed minutes later with a
    traceback from deep inside the sampler."""
    source = write_source(tmp_path / "photo.png")
    output = tmp_path / "out"
    started = time.monotonic()
    code, stdout, stderr, servers = run_watching(option, value, "--smoke-test", "--output", output,
                                                 "--edit", source, "make the sky red", timeout=60, cwd=tmp_path)
    assert code == 2, stdout + stderr
    assert time.monotonic() - started < 20
    assert servers == [] and not output.exists() and stdout == ""
    assert "Traceback" not in stderr
    last = error_lines(stderr)[-1]
    assert "error:" in last and option in last and value in last, stderr
    assert stderr.lstrip().startswith("usage:")


# -- 6. where the run cannot write, or its models are not -------------------------------------------------------------
def test_an_output_folder_that_cannot_be_made_is_refused_before_a_server_starts(tmp_path):
    """Old fault: the run edited for minutes and then failed writing the first result. (Tests run as root, so a
    folder under a regular file stands in for one without write permission.)"""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    output = blocker / "edits"
    source = write_source(tmp_path / "photo.png")
    code, stdout, stderr, servers = run_watching("--smoke-test", "--steps", 1, "--output", output,
                                                 "--edit", source, "make the sky red", timeout=120, cwd=tmp_path)
    assert code == 2, stdout + stderr
    assert servers == [], "a ComfyUI server was started for a run that cannot write its results"
    lines = error_lines(stderr)
    assert len(lines) == 1 and str(output) in lines[0], stderr
    assert "Traceback" not in stderr


def test_a_models_dir_that_does_not_exist_is_refused(tmp_path):
    source = write_source(tmp_path / "photo.png")
    code, stdout, stderr, servers = run_watching("--models-dir", "/nonexistent", "--steps", 1,
                                                 "--output", tmp_path / "out", "--edit", source, "make the sky red",
                                                 timeout=120, cwd=tmp_path)
    assert code == 2, stdout + stderr
    assert servers == []
    assert "/nonexistent" in error_lines(stderr)[-1] and "Traceback" not in stderr


# -- 7. images that cannot be edited -----------------------------------------------------------------------------
def test_bad_images_fail_with_their_own_path_and_the_good_one_is_edited(comfy_server, tmp_path):
    """Old fault: a damaged image failed inside ComfyUI's LoadImage with a traceback naming the server's copy
    (input/photo.png on the server), not the user's file; an animated GIF was edited from its first frame."""
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "text.png"
    text.write_text("this is not a picture\n")
    whole = (tmp_path / "whole.png")
    write_source(whole, 120, 90, variant=1)
    truncated = tmp_path / "truncated.png"
    data = whole.read_bytes()
    truncated.write_bytes(data[:len(data) // 2])
    animated = tmp_path / "animated.gif"
    frames = [Image.new("RGB", (40, 30), color) for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(animated, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(animated) as check:
        assert check.n_frames == 3
    good = write_source(tmp_path / "good.png")
    output = tmp_path / "out"
    args = ["--server", comfy_server.url, "--smoke-test", "--steps", 1, "--quiet", "--output", output]
    for path in (empty, text, truncated, animated, good):
        args += ["--edit", path, "make the sky red"]
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    state = last_state(output)
    assert state["good"]["status"] == "ok" and (output / "good_edited.png").exists()
    expected = {"empty": (empty, "empty"), "text": (text, "not an image"), "truncated": (truncated, "truncated"),
                "animated": (animated, "3 frames")}
    for item, (path, words) in expected.items():
        entry = state[item]
        assert entry["status"] == "failed", entry
        assert str(path) in entry["error"] and words in entry["error"], entry["error"]
        assert comfy_server.process.workdir not in entry["error"] and not re.search(r"icedit-[0-9a-f]{24}", entry["error"])
        assert not list(output.glob(f"{item}_*.png"))
        assert any(str(path) in line and words in line for line in result.stdout.splitlines()), result.stdout
    assert "4 failed" in result.stdout


# -- 8. running again into the same folder ---------------------------------------------------------------------------
def test_running_again_skips_what_is_done_and_never_overwrites_another_edit(comfy_server, tmp_path):
    """Old fault: the same command again redid everything, and a new instruction for the same image silently
    overwrote photo_edited.png."""
    source = write_source(tmp_path / "photo.png", 80, 64)
    output = tmp_path / "out"
    common = ["--server", comfy_server.url, "--smoke-test", "--steps", 1, "--quiet", "--output", output]
    first = run_cli(*common, "--edit", source, "make the sky red", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    edited = (output / "photo_edited.png").read_bytes()
    comparison = (output / "photo_comparison.png").read_bytes()
    ledger = (output / "results.jsonl").read_bytes()

    again = run_cli(*common, "--edit", source, "make the sky red", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 edited, 1 already done, 0 failed of 1" in again.stdout
    assert (output / "results.jsonl").read_bytes() == ledger

    other = run_cli(*common, "--edit", source, "make the grass blue", cwd=tmp_path)
    assert other.returncode == 1, other.stdout + other.stderr
    assert "nothing is overwritten" in other.stdout + other.stderr and "'photo'" in other.stdout + other.stderr
    assert "0 edited" in other.stdout
    assert (output / "photo_edited.png").read_bytes() == edited
    assert (output / "photo_comparison.png").read_bytes() == comparison
    assert (output / "results.jsonl").read_bytes() == ledger
    assert sorted(p.name for p in output.iterdir()) == ["photo_comparison.png", "photo_edited.png", "results.jsonl"]


# -- 9. no temporary folder left behind ----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["running server, smoke models named",
                                  # the model check before work makes its own client of the server (an
                                  # earlier version gave that client a temporary folder that nothing removed)
                                  "running server, smoke models detected"])
def test_a_run_leaves_no_temporary_folder_behind(comfy_server, tmp_path, mode):
    """Old fault: every run left an icedit-* folder (a server's input/output copies, its database) in /tmp.
    A run with a server of its own is checked for the same in test_batch.py's hung-server test (which starts
    one, and restarts it), and one with Ray workers in its interrupted-run test: each server start costs
    seconds, so these checks ride on runs that start servers anyway."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    source = write_source(tmp_path / "photo.png", 72, 72, variant=4)
    args = ["--steps", 1, "--quiet", "--output", tmp_path / "out", "--edit", source, "make the sky red",
            "--server", comfy_server.url]
    if "detected" not in mode:
        args.append("--smoke-test")
    result = run_cli(*args, env=runner_env(TMPDIR=str(temp)), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert last_state(tmp_path / "out")["photo"]["status"] == "ok"
    leftovers = leftovers_in(temp)
    assert leftovers == [], f"left in TMPDIR: {leftovers}"


def test_a_value_comfyui_refuses_fails_once_with_its_words_and_is_not_retried(comfy_server, tmp_path):
    """The runner leaves range checks of node inputs to ComfyUI (--steps stops at KSampler's 10000; the Early
    Filter Sampler takes at most 200): a refused prompt is recorded as failed with ComfyUI's message at once, not
    retried --retries times."""
    source = write_source(tmp_path / "photo.png")
    output = tmp_path / "out"
    result = run_cli("--server", comfy_server.url, "--smoke-test", "--workflow", "early_filter", "--steps", "500",
                     "--output", output, "--edit", source, "make the sky red", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    [entry] = read_ledger(output)
    assert entry["status"] == "failed" and "rejected the prompt" in entry["error"] and "steps" in entry["error"]
    attempts = (output / "attempts.log").read_text().splitlines()
    assert len(attempts) == 1 and "retrying" not in result.stdout
