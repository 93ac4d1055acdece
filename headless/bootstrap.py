"""Import ComfyUI and this pack in one Python process, as ComfyUI itself would see them.

The pack has a `nodes/` package and ComfyUI a top-level `nodes` module; the pack must therefore be imported as a
package (here `comfyui_icedit`), never with its own folder on sys.path. Stdlib only.
"""
from __future__ import annotations

import importlib.util
import os
import sys

PACK_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACK_MODULE = "comfyui_icedit"


def comfyui_path() -> str:
    path = os.environ.get("COMFYUI_PATH") or os.path.join(PACK_ROOT, ".host", "ComfyUI")
    if not os.path.isfile(os.path.join(path, "main.py")):
        raise RuntimeError(f"no ComfyUI at {path}; run scripts/setup.sh or set COMFYUI_PATH")
    return os.path.realpath(path)


def add_comfyui_to_path() -> str:
    path = comfyui_path()
    # The pack's folder (also as '' or '.', when started from it with `python -m`) would shadow ComfyUI's nodes.
    pack_folders = {os.path.realpath(PACK_ROOT), os.path.realpath(os.path.join(PACK_ROOT, "headless"))}
    sys.path[:] = [entry for entry in sys.path if os.path.realpath(entry or os.curdir) not in pack_folders]
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


def register_pack():
    """The pack as the package `comfyui_icedit`, without ComfyUI: enough for icedit_core and the runner, whose
    modules never import the host (the pack's nodes are imported only when ComfyUI calls its entrypoint)."""
    if PACK_MODULE in sys.modules:
        return sys.modules[PACK_MODULE]
    spec = importlib.util.spec_from_file_location(PACK_MODULE, os.path.join(PACK_ROOT, "__init__.py"),
                                                  submodule_search_locations=[PACK_ROOT])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_MODULE] = module
    spec.loader.exec_module(module)
    return module


def import_pack():
    """The pack as the package `comfyui_icedit` (ComfyUI on sys.path first)."""
    add_comfyui_to_path()
    use_cpu_without_gpu()
    return register_pack()
