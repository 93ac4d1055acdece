"""A judge behind any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, LM Studio, ...).

Images travel as base64 PNG data URLs. The API key is passed in by the caller (read from an environment
variable by the node) and never appears in errors, reprs or logs. Transient failures (connection errors,
timeouts, HTTP 429 and 5xx) are retried with exponential backoff; anything else is an error at once.
"""
from __future__ import annotations

import base64
import io
import json
import socket
import time
import urllib.error
import urllib.request

from .protocol import ChatJudge, JudgeError

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def image_data_url(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class OpenAICompatibleJudge(ChatJudge):
    name = "api"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 120.0,
                 retries: int = 3, backoff: float = 2.0, max_tokens: int = 256, sleep=time.sleep):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url {base_url!r} must start with http:// or https://")
        if not model.strip():
            raise ValueError("the model name is empty")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model.strip()
        self._api_key = api_key or None
        self.timeout, self.retries, self.backoff, self.max_tokens = timeout, retries, backoff, max_tokens
        self._sleep = sleep

    def __repr__(self):  # never the key
        return f"OpenAICompatibleJudge(url={self.url!r}, model={self.model!r}, key={'set' if self._api_key else 'none'})"

    def _request(self, body: bytes):
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return response.read()

    def ask(self, images, prompt: str) -> str:
        content = [{"type": "text", "text": prompt}]
        content += [{"type": "image_url", "image_url": {"url": image_data_url(image)}} for image in images]
        body = json.dumps({"model": self.model, "messages": [{"role": "user", "content": content}],
                           "temperature": 0, "max_tokens": self.max_tokens}).encode()
        last_problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            try:
                raw = self._request(body)
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
        raise JudgeError(f"the judge endpoint {self.url} did not answer after {self.retries + 1} tries "
                         f"(last: {last_problem}); is the server running and reachable?")

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
