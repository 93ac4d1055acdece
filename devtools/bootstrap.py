"""Import ComfyUI and this pack in one Python process, as ComfyUI itself would see them.

The pack has a `nodes/` package and ComfyUI a top-level `nodes` module; the pack is therefore imported as the
package `comfyui_icedit` (runner/paths.py), never with its own folder on sys.path. Stdlib only until ComfyUI.
"""
from __future__ import annotations

import os
import sys

from ..runner.paths import PACK_ROOT, comfyui_path


def add_comfyui_to_path() -> str:
    path = comfyui_path()
    # The checkout's folder (also as '' or '.', when started from it with `python -m`) would shadow ComfyUI's
    # nodes module with the pack's nodes package.
    pack_folder = os.path.realpath(PACK_ROOT)
    sys.path[:] = [entry for entry in sys.path if os.path.realpath(entry or os.curdir) != pack_folder]
    if path not in sys.path:
        sys.path.insert(0, path)
    return path


def use_cpu_without_gpu() -> None:
    """In-process ComfyUI reads its command-line options from defaults; without a GPU it must be told --cpu
    before comfy.model_management is first imported."""
    import comfy.cli_args
    import torch

    if not torch.cuda.is_available():
        comfy.cli_args.args.cpu = True


def import_pack():
    """ComfyUI first on sys.path, then the pack (`comfyui_icedit`, already imported: this module is in it)."""
    add_comfyui_to_path()
    use_cpu_without_gpu()
    return sys.modules["comfyui_icedit"]
