"""ComfyUI servers: ComfyProcess starts one headless and owns it; ComfyClient talks to one (ours or one running
elsewhere) over HTTP: upload images, submit prompts, follow them over the websocket, fetch outputs, and take back
this client's own prompts on exit.

Needs only the standard library and aiohttp (a ComfyUI dependency); imports neither comfy nor the pack.
"""
from __future__ import annotations

import asyncio
import ctypes
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid


class ComfyError(RuntimeError):
    """The server refused a prompt or a node failed; the message carries ComfyUI's own words."""


class ServerGone(ComfyError):
    """The server stopped answering (it died, or the connection broke) while a prompt was in its hands."""


class PromptTimeout(ComfyError):
    """A prompt did not finish within its time limit."""


class PromptRejected(ComfyError):
    """ComfyUI's validation refused the prompt: the same prompt would be refused again anywhere."""


class NodeFailed(ComfyError):
    """A node raised while the prompt ran (ComfyUI's execution_error); `exception_type` is its class's name as
    ComfyUI reports it ('ValueError', 'torch.OutOfMemoryError', ...)."""

    def __init__(self, message: str, exception_type: str = ""):
        super().__init__(message)
        self.exception_type = exception_type

    @classmethod
    def from_event(cls, data: dict) -> NodeFailed:
        # One line: ComfyUI appends tips (e.g. for running out of memory) on lines of their own.
        lines = str(data.get("exception_message") or "").splitlines()
        message = " ".join(line.strip() for line in lines if line.strip())
        kind = str(data.get("exception_type") or "")
        return cls(f"node {data.get('node_id')} ({data.get('node_type')}) failed: {kind}: {message}", kind)


# Folders a runner or a server of ours makes in the temp directory: named with the owner's pid, so a later run
# can remove those a SIGKILLed owner left (and never one whose owner still runs).
TEMP_PREFIXES = ("icedit-comfy-", "icedit-run-")


def owned_prefix(prefix: str) -> str:
    """The name prefix of a temp folder this process owns: `<prefix><pid>-` (tempfile adds the random rest)."""
    return f"{prefix}{os.getpid()}-"


def remove_orphaned_temp_dirs(temp: str | None = None) -> list[str]:
    """Removes the TEMP_PREFIXES folders in `temp` whose owner process is gone; returns their paths. Folders
    without a pid in the name (older versions') are left alone: nothing says whose they are."""
    temp = temp or tempfile.gettempdir()
    pattern = re.compile("(?:" + "|".join(map(re.escape, TEMP_PREFIXES)) + r")(\d+)-[a-z0-9_]+")
    removed = []
    try:
        names = os.listdir(temp)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        path = os.path.join(temp, name)
        if match and not _process_exists(int(match.group(1))) and os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def normalize_url(url: str) -> str:
    """'127.0.0.1:8188' -> 'http://127.0.0.1:8188'; refuses what cannot be a server address."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ComfyError(f"{url!r} is not a ComfyUI server address (expected e.g. http://127.0.0.1:8188)")
    return url


def write_extra_model_paths(path: str, custom_nodes_dir: str, model_dirs: list[str]) -> str:
    """An extra_model_paths.yaml that loads the pack from `custom_nodes_dir` and adds each ComfyUI-style models
    folder in `model_dirs` (diffusion_models/, unet/, vae/, text_encoders/, clip/, loras/, ...)."""
    lines = ["icedit_pack:", f"  custom_nodes: {json.dumps(custom_nodes_dir)}"]
    for index, models in enumerate(model_dirs):
        lines += [f"icedit_models_{index}:", f"  base_path: {json.dumps(models)}"]
        for kind, folders in (("diffusion_models", "diffusion_models|unet"), ("vae", "vae"),
                              ("text_encoders", "text_encoders|clip"), ("loras", "loras"),
                              ("controlnet", "controlnet"), ("upscale_models", "upscale_models"), ("vlm", "vlm"),
                              ("clipseg", "clipseg")):
            lines.append(f"  {kind}: {json.dumps(chr(10).join(folders.split('|')))}")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def _die_with_parent() -> None:
    """In the server's process, before exec: the kernel sends it SIGKILL when its parent dies, so a runner (or
    Ray actor) killed with SIGKILL leaves no ComfyUI behind. Linux only; elsewhere a no-op."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class ComfyProcess:
    """A ComfyUI server this process starts and owns: `main.py` headless on a free port, with a folder of its own
    (inputs, outputs, log, database) unless `workdir` is given. `start()` returns a ComfyClient bound to it."""

    def __init__(self, comfyui_path: str, python: str = sys.executable, extra_model_paths: str | None = None,
                 workdir: str | None = None, cpu: bool | None = None, extra_args: list[str] | None = None,
                 env: dict | None = None):
        self.comfyui_path = comfyui_path
        self.python = python
        self.extra_model_paths = extra_model_paths
        self.owns_workdir = workdir is None
        if self.owns_workdir:
            remove_orphaned_temp_dirs()  # what a killed runner or Ray actor left on this machine
            workdir = tempfile.mkdtemp(prefix=owned_prefix("icedit-comfy-"))
        self.workdir = workdir
        self.cpu = cpu
        self.extra_args = extra_args or []
        self.env = env or {}  # changes to the server's environment; a value None removes the variable
        self.log_path = os.path.join(self.workdir, "comfyui.log")
        self.popen: subprocess.Popen | None = None
        self.url: str | None = None

    def start(self, timeout: float = 300.0) -> "ComfyClient":
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        dirs = {name: os.path.join(self.workdir, name) for name in ("input", "output", "temp", "user")}
        for path in dirs.values():
            os.makedirs(path, exist_ok=True)
        command = [self.python, os.path.join(self.comfyui_path, "main.py"), "--listen", "127.0.0.1",
                   "--port", str(port), "--disable-auto-launch",
                   "--database-url", "sqlite:///" + os.path.join(self.workdir, "comfyui.db"),
                   "--input-directory", dirs["input"], "--output-directory", dirs["output"],
                   "--temp-directory", dirs["temp"], "--user-directory", dirs["user"]]
        if self.cpu if self.cpu is not None else not _has_cuda(self.python):
            command.append("--cpu")
        if self.extra_model_paths:
            command += ["--extra-model-paths-config", self.extra_model_paths]
        command += self.extra_args
        # A clean sys.path for ComfyUI: run from its folder; never from the pack (its nodes/ would shadow).
        with open(self.log_path, "w", encoding="utf-8") as log:
            self.popen = subprocess.Popen(command, cwd=self.comfyui_path, stdout=log, stderr=subprocess.STDOUT,
                                          env=_server_env(self.env), preexec_fn=_die_with_parent)
        client = ComfyClient(self.url, process=self)
        try:
            client.wait_ready(timeout)
        except BaseException:  # also Ctrl-C while it starts: never leave the child behind
            self.stop()
            raise
        return client

    def exit_code(self) -> int | None:
        """The code it exited with, or None while it runs (or before it was started)."""
        return None if self.popen is None else self.popen.poll()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> None:
        """Ends the server; every prompt in its queue goes with it."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.popen = None

    def restart(self, timeout: float = 300.0) -> "ComfyClient":
        """A fresh server process (a new port) after this one died or hung, and a client for it."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self.popen = None
        return self.start(timeout)

    def cleanup(self) -> None:
        """stop(), and remove the temporary folder this object made for the server."""
        self.stop()
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return "(no log)"


class ComfyClient:
    """Talks to one ComfyUI server over HTTP and its websocket: upload, submit, follow, fetch outputs, and take
    back this client's own prompts. `process` is the ComfyProcess behind the URL when this process owns it (its
    death then ends a wait at once, with its log); None for a server that runs elsewhere."""

    def __init__(self, url: str, process: ComfyProcess | None = None):
        self.url = normalize_url(url)
        self.process = process
        self.client_id = uuid.uuid4().hex
        self.own_prompts: set[str] = set()  # submitted by this client and not yet finished

    def wait_ready(self, timeout: float = 10.0) -> "ComfyClient":
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            self._raise_if_exited(starting=True)
            try:
                stats = self.get_json("/system_stats", timeout=2)
            except ServerGone as error:
                last_error = error.__cause__
                if self.process is None and isinstance(getattr(last_error, "reason", last_error),
                                                       ConnectionRefusedError):
                    break  # nothing listens there: a running server would have answered
                time.sleep(0.5)
                continue
            except (ComfyError, ValueError) as error:  # answers, but not as ComfyUI does
                raise ComfyError(f"{self.url} answered, but it is not a ComfyUI server ({error})") from None
            if not isinstance(stats, dict) or "system" not in stats:
                raise ComfyError(f"{self.url} answered /system_stats without ComfyUI's fields; is it ComfyUI?")
            return self
        if self.process is None:
            raise ComfyError(f"no ComfyUI server answers at {self.url} ({last_error}); is it running?")
        raise ComfyError(f"ComfyUI at {self.url} did not answer within {timeout:.0f} s; log tail:\n"
                         f"{self.process.log_tail()}")

    def _raise_if_exited(self, starting: bool) -> None:
        """When our server's process has exited: ComfyError while it starts (its log's traceback says why), else
        ServerGone (the prompt in its hands is lost; a retry may pass on a fresh server)."""
        code = None if self.process is None else self.process.exit_code()
        if code is None:
            return
        error, doing, lines = (ComfyError, "while starting", 40) if starting else (
            ServerGone, "while running the prompt", 15)
        raise error(f"ComfyUI exited with code {code} {doing}; last lines of {self.process.log_path}:\n"
                    f"{self.process.log_tail(lines)}")

    # -- HTTP ------------------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: bytes | None = None, headers=None, timeout: float = 60):
        """(HTTP status, body). Raises ServerGone when the server does not answer (refused, reset, timed out)."""
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ServerGone(f"the ComfyUI server at {self.url} does not answer ({reason})") from error

    def get_json(self, path: str, timeout: float = 60):
        status, raw = self._request("GET", path, timeout=timeout)
        if status != 200:
            raise ComfyError(f"GET {path} answered HTTP {status}: {raw[:300]!r}")
        return json.loads(raw)

    def post_json(self, path: str, data: dict, timeout: float = 60):
        return self._request("POST", path, json.dumps(data).encode(), {"Content-Type": "application/json"},
                             timeout=timeout)

    def object_info(self) -> dict:
        return self.get_json("/object_info")

    def submit(self, prompt: dict) -> str:
        """POST /prompt; returns the prompt id. Raises ComfyError with ComfyUI's validation errors, including
        the case where the server accepts the prompt but reports errors for some nodes."""
        status, raw = self.post_json("/prompt", {"prompt": prompt, "client_id": self.client_id})
        answer = json.loads(raw or b"{}")
        if status != 200 or answer.get("node_errors"):
            raise PromptRejected(f"ComfyUI rejected the prompt (HTTP {status}): {_validation_summary(answer)}")
        self.own_prompts.add(answer["prompt_id"])
        return answer["prompt_id"]

    def history(self, prompt_id: str, timeout: float = 60) -> dict | None:
        return self.get_json(f"/history/{prompt_id}", timeout=timeout).get(prompt_id)

    def queue_ahead(self, prompt_id: str) -> int:
        """How many prompts of anyone run or wait before `prompt_id` (0 when it runs or has finished)."""
        queue = self.get_json("/queue", timeout=10)
        running = [item[1] for item in queue.get("queue_running", [])]
        pending = sorted(queue.get("queue_pending", []), key=lambda item: item[0])
        if prompt_id in running:
            return 0
        ids = [item[1] for item in pending]
        return len(running) + ids.index(prompt_id) if prompt_id in ids else 0

    def cancel_own_prompts(self) -> None:
        """Deletes this client's queued prompts and interrupts its running one; other clients' work is left
        alone. Best effort: a server that is gone has nothing left to cancel."""
        if not self.own_prompts:
            return
        try:
            queue = self.get_json("/queue", timeout=5)
            running = {item[1] for item in queue.get("queue_running", [])}
            self.post_json("/queue", {"delete": sorted(self.own_prompts - running)}, timeout=5)
            for prompt_id in self.own_prompts & running:
                self.post_json("/interrupt", {"prompt_id": prompt_id}, timeout=5)
        except (ComfyError, ValueError):
            pass
        self.own_prompts.clear()

    def upload_image(self, data: bytes, extension: str = ".png", timeout: float = 60) -> str:
        """Uploads image bytes under a name made from their content, so two images never share a name on the
        server (and the same image is stored once). Returns the name LoadImage takes."""
        name = "icedit-" + hashlib.sha256(data).hexdigest()[:24] + extension
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + \
               f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\ntrue\r\n" \
               f"--{boundary}--\r\n".encode()
        status, raw = self._request("POST", "/upload/image", body,
                                    {"Content-Type": f"multipart/form-data; boundary={boundary}"}, timeout=timeout)
        if status != 200:
            raise ComfyError(f"uploading an image to {self.url} failed (HTTP {status}): {raw[:500]!r}")
        answer = json.loads(raw)
        return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else answer["name"]

    def view(self, image: dict) -> bytes:
        query = urllib.parse.urlencode({"filename": image["filename"], "subfolder": image.get("subfolder", ""),
                                        "type": image.get("type", "output")})
        status, raw = self._request("GET", f"/view?{query}")
        if status != 200:
            raise ComfyError(f"fetching {image} failed (HTTP {status})")
        return raw

    # -- running ---------------------------------------------------------------------------------------------
    def run(self, prompt: dict, on_progress=None, timeout: float = 3600, on_queued=None) -> dict:
        """Submit and wait, reporting progress; returns the finished /history entry. Raises ComfyError with
        ComfyUI's error message when a node fails, ServerGone when the server stops answering, PromptTimeout
        (after interrupting the prompt) when it runs past `timeout`. `on_queued(n)` hears when the prompt
        waits behind n others."""
        try:
            return asyncio.run(self._run(prompt, on_progress, timeout, on_queued))
        except OSError as error:  # the websocket's connection
            raise ServerGone(f"the ComfyUI server at {self.url} stopped answering: {error}") from error

    async def _run(self, prompt, on_progress, timeout, on_queued):
        import aiohttp  # ComfyUI's own dependency; only the runner and tests get here

        ws_url = self.url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        try:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(ws_url, heartbeat=30, max_msg_size=0) as ws:
                    prompt_id = self.submit(prompt)
                    try:
                        await self._follow(ws, prompt_id, on_progress, timeout, on_queued)
                    except BaseException:
                        self.cancel_own_prompts()  # a timeout, Ctrl-C or SIGTERM takes back what we queued
                        raise
        except aiohttp.ClientError as error:
            raise ServerGone(f"the ComfyUI server at {self.url} stopped answering: {error}") from error
        self.own_prompts.discard(prompt_id)
        entry = self.history(prompt_id)
        for _ in range(40):  # the entry normally exists by now; allow the server a moment if not
            if entry is not None:
                break
            await asyncio.sleep(0.25)
            entry = self.history(prompt_id)
        if entry is None:
            raise ComfyError(f"prompt {prompt_id} is not in the history")
        status = entry.get("status", {})
        if status.get("status_str") != "success":
            for kind, data in status.get("messages", []):  # the node's error, when the websocket missed it
                if kind == "execution_error":
                    raise NodeFailed.from_event(data)
            raise ComfyError(f"prompt {prompt_id} ended with {status}")
        return entry

    async def _follow(self, ws, prompt_id, on_progress, timeout, on_queued):
        import aiohttp

        deadline = time.monotonic() + timeout
        if on_queued is not None:
            ahead = self.queue_ahead(prompt_id)
            if ahead:
                on_queued(ahead)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PromptTimeout(f"prompt {prompt_id} did not finish within {timeout:.0f} s")
            self._raise_if_exited(starting=False)
            try:
                message = await ws.receive(timeout=min(remaining, 2.0))
            except asyncio.TimeoutError:
                entry = self.history(prompt_id, timeout=min(10.0, max(remaining, 1.0)))  # missed a message?
                if entry is not None and entry.get("status", {}).get("completed") is not None:
                    return
                continue
            if message.type != aiohttp.WSMsgType.TEXT:
                if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                    raise ServerGone(f"the ComfyUI server at {self.url} closed the connection while the prompt "
                                     "was running")
                continue  # binary preview frames
            event = json.loads(message.data)
            data = event.get("data", {})
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if event["type"] == "execution_error":
                raise NodeFailed.from_event(data)
            if event["type"] == "execution_interrupted":
                raise ComfyError("the prompt was interrupted on the server")
            if on_progress is not None and event["type"] in ("progress", "executing"):
                on_progress(event["type"], data)
            # Not "execution_success": ComfyUI sends it before the history entry is written.
            if event["type"] == "executing" and data.get("node") is None:
                return


def _validation_summary(answer: dict) -> str:
    """ComfyUI's /prompt error answer in a few lines: the error, then each failing node's own messages."""
    lines = []
    error = answer.get("error")
    if isinstance(error, dict):
        lines.append(f"{error.get('message', '')} {error.get('details', '')}".strip())
    for node_id, node in (answer.get("node_errors") or {}).items():
        for item in node.get("errors", []):
            lines.append(f"node {node_id} ({node.get('class_type')}): {item.get('message')}: {item.get('details')}")
    return "; ".join(line for line in lines if line) or json.dumps(answer)[:2000]


def _server_env(changes: dict) -> dict:
    """The server's environment: ours with `changes`, less a PYTHONPATH that may hold this pack's folder (whose
    nodes/ package would shadow ComfyUI's nodes module)."""
    env = {**os.environ, **changes, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)
    return {name: value for name, value in env.items() if value is not None}


# Device files of the drivers through which torch.cuda sees a GPU (NVIDIA, AMD ROCm, WSL): without any of them no
# torch can, and the probe below (a Python importing torch, seconds) is skipped.
GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")


@functools.lru_cache(maxsize=None)
def _has_cuda(python: str) -> bool:
    if not any(os.path.exists(path) for path in GPU_DEVICE_FILES):
        return False
    probe = subprocess.run([python, "-c", "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"],
                           capture_output=True)
    return probe.returncode == 0
