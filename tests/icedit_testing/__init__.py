"""Helpers shared by the three test tiers (tests/core, tests/pack, tests/system); pytest puts tests/ on sys.path
(pyproject's pythonpath), so they import as `icedit_testing.*`. Importing this package never imports ComfyUI."""
from __future__ import annotations

import importlib.util
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("ICEDIT_CACHE", os.path.expanduser("~/.cache/icedit-comfyui"))
# ComfyUI's top-level modules: what the core tier, icedit_core and the runner must never import.
HOST_MODULES = frozenset({"comfy", "comfy_api", "comfy_extras", "comfy_execution", "nodes", "folder_paths", "server",
                          "execution", "node_helpers"})


def _load_bootstrap():
    """headless/bootstrap.py on its own (stdlib only): it registers the pack as a package, and imports ComfyUI
    first when a tier needs the host."""
    spec = importlib.util.spec_from_file_location("icedit_bootstrap", os.path.join(REPO, "headless", "bootstrap.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bootstrap = _load_bootstrap()
