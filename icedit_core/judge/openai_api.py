"""A judge behind any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, LM Studio, ...).

Images travel as base64 PNG data URLs. The API key is passed in by the caller (read from an environment
variable by the node) and never appears in errors, reprs or logs. Transient failures (connection errors,
timeouts, HTTP 429 and 5xx) are retried with exponential backoff; anything else is an error at once.

`timeout` bounds one answer as a whole: every try and every backoff pause share it. Waiting happens in short
slices so that the caller's `check_interrupt` (ComfyUI's cancel button) is honoured within a fraction of a
second, even while a request hangs.
"""
from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request

from . import editscore
from .protocol import VIESCORE, ChatJudge, JudgeError

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
WAIT_SLICE = 0.2  # seconds between interrupt checks while waiting
REACHABILITY_TIMEOUT = 10.0  # the cheap check before sampling: GET /models


def image_data_url(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class OpenAICompatibleJudge(ChatJudge):
    name = "api"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 120.0,
                 retries: int = 3, backoff: float = 2.0, max_tokens: int = 256, sleep=time.sleep,
                 check_interrupt=None, scoring: str = VIESCORE, passes: int = 1):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url {base_url!r} must start with http:// or https://")
        if not model.strip():
            raise ValueError("the model name is empty")
        if timeout <= 0:
            raise ValueError(f"timeout = {timeout}; it must be a positive number of seconds")
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.model = model.strip()
        self._api_key = api_key or None
        self.timeout, self.retries, self.backoff, self.max_tokens = timeout, retries, backoff, max_tokens
        self._sleep = sleep
        self._check_interrupt = check_interrupt or (lambda: None)
        self.set_scoring(scoring, passes)

    def __repr__(self):  # never the key
        return f"OpenAICompatibleJudge(url={self.url!r}, model={self.model!r}, key={'set' if self._api_key else 'none'})"

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _open(self, request: urllib.request.Request, timeout: float) -> bytes:
        """urlopen in a helper thread, waited for in slices that check for an interrupt. An interrupted request
        is abandoned; its thread ends by itself at `timeout`."""
        outcome = {}
        done = threading.Event()

        def fetch():
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    outcome["body"] = response.read()
            except BaseException as error:  # handed to the waiting thread
                outcome["error"] = error
            finally:
                done.set()

        threading.Thread(target=fetch, name="icedit-judge-request", daemon=True).start()
        while not done.wait(WAIT_SLICE):
            self._check_interrupt()
        self._check_interrupt()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["body"]

    def _pause(self, seconds: float) -> None:
        while seconds > 0:
            self._check_interrupt()
            step = min(WAIT_SLICE, seconds)
            self._sleep(step)
            seconds -= step
        self._check_interrupt()

    def check(self) -> None:
        """Is the endpoint there? A cheap GET of /models, before any sampling. Any HTTP answer but 401/403 counts
        as reachable (some servers do not list models); no answer or a refused key is a JudgeError."""
        request = urllib.request.Request(self.base_url + "/models", headers=self._headers(), method="GET")
        try:
            self._open(request, min(REACHABILITY_TIMEOUT, self.timeout))
        except urllib.error.HTTPError as error:
            if error.code in (401, 403):
                raise JudgeError(f"the judge endpoint {self.base_url} refused the API key (HTTP {error.code}); "
                                 "check the key's environment variable") from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise JudgeError(f"cannot reach the judge endpoint {self.base_url} ({type(reason).__name__}: {reason}); "
                             "start the server or fix base_url. Nothing was sampled.") from None

    def ask(self, images, prompt: str, seed: int | None = None) -> str:
        content = [{"type": "text", "text": prompt}]
        content += [{"type": "image_url", "image_url": {"url": image_data_url(image)}} for image in images]
        request_body = {"model": self.model, "messages": [{"role": "user", "content": content}], "temperature": 0,
                        "max_tokens": self.max_tokens}
        if seed is not None:  # a sampled answer (EditScore's passes); vLLM and OpenAI take a seed
            request_body.update(temperature=editscore.TEMPERATURE, seed=seed)
        body = json.dumps(request_body).encode()
        deadline = time.monotonic() + self.timeout
        last_problem, tries = "", 0
        for attempt in range(self.retries + 1):
            if attempt:
                pause = self.backoff * 2 ** (attempt - 1)
                if time.monotonic() + pause >= deadline:
                    break
                self._pause(pause)
            left = deadline - time.monotonic()
            if left <= 0:
                break
            tries += 1
            request = urllib.request.Request(self.url, data=body, headers=self._headers(), method="POST")
            try:
                raw = self._open(request, left)
            except urllib.error.HTTPError as error:
                detail = error.read()[:300].decode("utf-8", "replace")
                last_problem = f"HTTP {error.code}: {detail}"
                if error.code in RETRYABLE_STATUS:
                    continue
                raise JudgeError(f"the judge endpoint {self.url} refused the request ({last_problem}); check "
                                 "the model name and the API key's environment variable") from None
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as error:
                reason = getattr(error, "reason", error)
                last_problem = f"{type(reason).__name__}: {reason}"
                continue
            return self._content(raw)
        raise JudgeError(f"the judge endpoint {self.url} did not answer after {tries} "
                         f"{'try' if tries == 1 else 'tries'} within the "
                         f"{self.timeout:g} s timeout (last: {last_problem or 'no time left for a try'}); is the "
                         "server running and reachable?")

    def _content(self, raw: bytes) -> str:
        try:
            message = json.loads(raw)["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise JudgeError(f"the judge endpoint {self.url} answered something that is not a chat completion: "
                             f"{raw[:200]!r}") from None
        content = message.get("content") or ""
        if isinstance(content, list):  # content parts
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
