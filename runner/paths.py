"""Where this checkout, its import root and the ComfyUI host are. Stdlib only.

Every module of the checkout is imported as `comfyui_icedit.<room>.<module>` (one name each, in the runner, the
developer tools, the benchmarks and the tests): `.host/python/comfyui_icedit` is a link to the checkout made by
scripts/setup.sh, and `.host/python` is what goes on PYTHONPATH (scripts/icedit) or pytest's pythonpath.
"""
from __future__ import annotations

import os

PACKAGE = "comfyui_icedit"
PACK_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
IMPORT_ROOT = os.path.join(PACK_ROOT, ".host", "python")


def comfyui_path() -> str:
    path = os.environ.get("COMFYUI_PATH") or os.path.join(PACK_ROOT, ".host", "ComfyUI")
    if not os.path.isfile(os.path.join(path, "main.py")):
        raise RuntimeError(f"no ComfyUI at {path}; run scripts/setup.sh or set COMFYUI_PATH")
    return os.path.realpath(path)


def python_env(env: dict | None = None) -> dict:
    """An environment (ours by default) in which a child Python imports `comfyui_icedit` from this checkout."""
    env = dict(os.environ if env is None else env)
    kept = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry and entry != IMPORT_ROOT]
    env["PYTHONPATH"] = os.pathsep.join([IMPORT_ROOT, *kept])
    return env
