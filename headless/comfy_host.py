"""A ComfyUI server to talk to over HTTP: start one headless (or reuse a running one), submit prompts, follow
progress over the websocket, fetch outputs. Used by the command-line runner and the server tests.

Needs only the standard library and aiohttp (a ComfyUI dependency); imports neither comfy nor the pack.
"""
from __future__ import annotations

import asyncio
import json
import os
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_extra_model_paths(path: str, custom_nodes_dir: str, model_dirs: list[str]) -> str:
    """An extra_model_paths.yaml that loads the pack from `custom_nodes_dir` and adds each ComfyUI-style models
    folder in `model_dirs` (diffusion_models/, unet/, vae/, text_encoders/, clip/, loras/, ...)."""
    lines = ["icedit_pack:", f"  custom_nodes: {json.dumps(custom_nodes_dir)}"]
    for index, models in enumerate(model_dirs):
        lines += [f"icedit_models_{index}:", f"  base_path: {json.dumps(models)}"]
        for kind, folders in (("diffusion_models", "diffusion_models|unet"), ("vae", "vae"),
                              ("text_encoders", "text_encoders|clip"), ("loras", "loras"),
                              ("controlnet", "controlnet"), ("upscale_models", "upscale_models"), ("vlm", "vlm")):
            lines.append(f"  {kind}: {json.dumps(chr(10).join(folders.split('|')))}")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


class ComfyServer:
    """A ComfyUI server: `start()` launches `main.py` headless, or pass `url` to use one that is running."""

    def __init__(self, url: str | None = None, comfyui_path: str | None = None, python: str = sys.executable,
                 extra_model_paths: str | None = None, workdir: str | None = None, cpu: bool | None = None,
                 extra_args: list[str] | None = None):
        self.url = url.rstrip("/") if url else None
        self.comfyui_path = comfyui_path
        self.python = python
        self.extra_model_paths = extra_model_paths
        self.workdir = workdir or tempfile.mkdtemp(prefix="icedit-comfy-")
        self.cpu = cpu
        self.extra_args = extra_args or []
        self.process: subprocess.Popen | None = None
        self.log_path = os.path.join(self.workdir, "comfyui.log")
        self.client_id = uuid.uuid4().hex

    # -- lifetime --------------------------------------------------------------------------------------------
    def start(self, timeout: float = 300.0) -> "ComfyServer":
        if self.url:
            self.wait_ready(timeout)
            return self
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
        log = open(self.log_path, "w", encoding="utf-8")
        # A clean sys.path for ComfyUI: run from its folder; never from the pack (its nodes/ would shadow).
        self.process = subprocess.Popen(command, cwd=self.comfyui_path, stdout=log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            self.wait_ready(timeout)
        except Exception:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ComfyError(f"ComfyUI exited with code {self.process.returncode} while starting; "
                                 f"last lines of {self.log_path}:\n{self.log_tail()}")
            try:
                self.get_json("/system_stats", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        raise ComfyError(f"ComfyUI at {self.url} did not answer within {timeout:.0f} s; log tail:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- HTTP ------------------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: bytes | None = None, headers=None, timeout: float = 60):
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def get_json(self, path: str, timeout: float = 60):
        status, raw = self._request("GET", path, timeout=timeout)
        if status != 200:
            raise ComfyError(f"GET {path} answered HTTP {status}: {raw[:300]!r}")
        return json.loads(raw)

    def object_info(self) -> dict:
        return self.get_json("/object_info")

    def submit(self, prompt: dict) -> str:
        """POST /prompt; returns the prompt id. Raises ComfyError with ComfyUI's validation errors, including
        the case where the server accepts the prompt but reports errors for some nodes."""
        body = json.dumps({"prompt": prompt, "client_id": self.client_id}).encode()
        status, raw = self._request("POST", "/prompt", body, {"Content-Type": "application/json"})
        answer = json.loads(raw or b"{}")
        if status != 200 or answer.get("node_errors"):
            raise ComfyError(f"ComfyUI rejected the prompt (HTTP {status}): {json.dumps(answer, indent=1)[:4000]}")
        return answer["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        return self.get_json(f"/history/{prompt_id}").get(prompt_id)

    def upload_image(self, path: str, name: str | None = None) -> str:
        name = name or os.path.basename(path)
        boundary = uuid.uuid4().hex
        with open(path, "rb") as handle:
            data = handle.read()
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + \
               f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\ntrue\r\n" \
               f"--{boundary}--\r\n".encode()
        status, raw = self._request("POST", "/upload/image", body,
                                    {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        if status != 200:
            raise ComfyError(f"uploading {path} failed (HTTP {status}): {raw[:500]!r}")
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
    def run(self, prompt: dict, on_progress=None, timeout: float = 3600) -> dict:
        """Submit and wait, reporting progress; returns the finished /history entry. Raises ComfyError with
        ComfyUI's error message when a node fails."""
        return asyncio.run(self._run(prompt, on_progress, timeout))

    async def _run(self, prompt, on_progress, timeout):
        import aiohttp  # ComfyUI's own dependency; only the runner and tests get here

        ws_url = self.url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url, heartbeat=30, max_msg_size=0) as ws:
                prompt_id = self.submit(prompt)
                deadline = time.monotonic() + timeout
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise ComfyError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")
                    try:
                        message = await ws.receive(timeout=min(remaining, 5.0))
                    except asyncio.TimeoutError:
                        entry = self.history(prompt_id)  # a message may have come before we listened
                        if entry is not None and entry.get("status", {}).get("completed") is not None:
                            break
                        continue
                    if message.type != aiohttp.WSMsgType.TEXT:
                        if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                            raise ComfyError("the ComfyUI websocket closed while the prompt was running")
                        continue  # binary preview frames
                    event = json.loads(message.data)
                    data = event.get("data", {})
                    if data.get("prompt_id") not in (None, prompt_id):
                        continue
                    if event["type"] == "execution_error":
                        raise ComfyError(f"node {data.get('node_id')} ({data.get('node_type')}) failed: "
                                         f"{data.get('exception_type')}: {data.get('exception_message')}")
                    if event["type"] == "execution_interrupted":
                        raise ComfyError("the prompt was interrupted")
                    if on_progress is not None and event["type"] in ("progress", "executing"):
                        on_progress(event["type"], data)
                    # Not "execution_success": ComfyUI sends it before the history entry is written.
                    if event["type"] == "executing" and data.get("node") is None:
                        break
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
            raise ComfyError(f"prompt {prompt_id} ended with {status}")
        return entry


def _has_cuda(python: str) -> bool:
    probe = subprocess.run([python, "-c", "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"],
                           capture_output=True)
    return probe.returncode == 0
