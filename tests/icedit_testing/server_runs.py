"""What several system tests do with a server: read a shipped workflow, upload a file, run the README's main job,
look for what a run left in its TMPDIR."""
from __future__ import annotations

import json
import os
import re
import signal
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
    """The README's main job as a user runs it (python -m comfyui_icedit.runner.run_icedit, what scripts/icedit
    execs)."""
    env = {**os.environ}
    return subprocess.run([sys.executable, "-m", "comfyui_icedit.runner.run_icedit", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def leftovers_in(temp) -> list[str]:
    """What a run left in its TMPDIR. torch's inductor cache folder (torchinductor_<user>, created empty by
    `import torch._dynamo` in every process that imports torch, ComfyUI's included) is not the runner's: it has
    a fixed name, is shared by every torch process of the user and does not grow per run."""
    return sorted(name for name in os.listdir(temp) if not re.fullmatch(r"torchinductor_\w+", name))


def default_sigint() -> None:
    """A subprocess's preexec_fn: Ctrl-C (SIGINT) does what it does for a runner started from a terminal. A
    shell starts background jobs (`pytest ... &`, nohup) with SIGINT ignored, children inherit that, and Python
    then never raises KeyboardInterrupt: a test that interrupts its runner would see it run on to the end."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
