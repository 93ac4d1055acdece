"""Helpers shared by the three test tiers (tests/core, tests/pack, tests/system); pytest puts tests/ on sys.path
(pyproject's pythonpath), so they import as `icedit_testing.*`. Importing this package never imports ComfyUI."""
from __future__ import annotations

import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("ICEDIT_CACHE", os.path.expanduser("~/.cache/icedit-comfyui"))


def _load_bootstrap():
    """headless/bootstrap.py on its own (stdlib only): it registers the pack as a package, and imports ComfyUI
    first when a tier needs the host."""
    if "icedit_bootstrap" in sys.modules:
        return sys.modules["icedit_bootstrap"]
    spec = importlib.util.spec_from_file_location("icedit_bootstrap", os.path.join(REPO, "headless", "bootstrap.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["icedit_bootstrap"] = module
    spec.loader.exec_module(module)
    return module


bootstrap = _load_bootstrap()
