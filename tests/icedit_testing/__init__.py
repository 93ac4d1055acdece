"""Helpers shared by the three test tiers (tests/core, tests/pack, tests/system); pytest puts tests/ on sys.path
and .host/python on sys.path (pyproject's pythonpath), so they import as `icedit_testing.*` and the checkout as
`comfyui_icedit.*` (runner/paths.py). Importing this package never imports ComfyUI."""
from __future__ import annotations

import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("ICEDIT_CACHE", os.path.expanduser("~/.cache/icedit-comfyui"))
# ComfyUI's top-level modules: what the core tier, icedit_core and the runner must never import.
HOST_MODULES = frozenset({"comfy", "comfy_api", "comfy_extras", "comfy_execution", "nodes", "folder_paths", "server",
                          "execution", "node_helpers"})
