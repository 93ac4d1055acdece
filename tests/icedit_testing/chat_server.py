"""A loopback chat-completions server (bounded, scripted answers) for the API judge and planner tests."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch


class ChatServer:
    """Answers POST /v1/chat/completions from a script of (status, content or None, delay) steps."""

    def __init__(self, script, models_status=200):
        self.script = list(script)
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # GET /v1/models, the judge's reachability check
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": None})
                self.send_response(models_status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status, content, delay = outer.script.pop(0) if outer.script else (200, "1", 0)
                time.sleep(delay)
                if status == 200 and isinstance(content, bytes):
                    payload = content
                elif status == 200:
                    payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                else:
                    payload = b'{"error": "boom"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        # A short poll: shutdown() waits up to one poll interval, and the tests start many of these servers.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def images():
    generator = torch.Generator().manual_seed(0)
    return [torch.rand(16, 16, 3, generator=generator) for _ in range(3)]
