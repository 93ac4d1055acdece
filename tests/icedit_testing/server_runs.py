"""What several system tests do with a server: read a shipped workflow, upload a file, run the README's main job."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from icedit_testing import REPO


def load_workflow(name) -> dict:
    with open(os.path.join(REPO, "workflows", name), encoding="utf-8") as handle:
        return json.load(handle)


def upload(server, path) -> str:
    with open(path, "rb") as handle:
        return server.upload_image(handle.read(), os.path.splitext(str(path))[1])


def run_main_job(*args, timeout=600):
    """The README's main job as a user runs it (python -m comfyui_icedit.runner.run_icedit, what scripts/icedit execs)."""
    env = {**os.environ}
    return subprocess.run([sys.executable, "-m", "comfyui_icedit.runner.run_icedit", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)
