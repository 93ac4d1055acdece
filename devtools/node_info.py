"""Node types' sockets as the frontend draws them, read from ComfyUI's own node descriptions (the /object_info
format) instead of typed by hand: the pack's nodes from their V3 schemas, in this process (`GET_NODE_INFO_V1`, what
ComfyUI's server answers for them), ComfyUI's core nodes from a pinned snapshot of a real server's /object_info
entries (core_nodes_object_info.json beside this file: only the node types the shipped workflows use).

`refresh_core_snapshot` rewrites the snapshot from a ComfyUI server it starts (runner/comfy_host.py);
tests/system/test_object_info_snapshot.py checks the snapshot against the test server's /object_info. The lists of
the server's own files (model files, uploaded inputs) are stored empty: they differ from one server to the next.
ComfyUI is imported only by `pack_object_info`.
"""
from __future__ import annotations

import asyncio
import copy
import functools
import json
import os
import sys

from ..icedit_core.model_files import LOADER_INPUTS

SNAPSHOT_PATH = os.path.join(os.path.dirname(os.path.realpath(__file__)), "core_nodes_object_info.json")
REFRESH_COMMAND = "python -m comfyui_icedit.devtools.build_workflows --refresh-core-nodes"

# Node types that only the frontend knows (no server lists them): (input sockets, output sockets).
FRONTEND_NODES = {"MarkdownNote": ((), ())}

# Input types the frontend draws as widgets; such an input is a socket only when it says forceInput. A list of
# options in place of the type (the V1 combo) is a widget too.
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
# Combo options that mark an input listing the server's input folder (what was uploaded to it).
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload")

Sockets = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]  # ((name, type) in, (name, type) out)


def sockets(entry: dict) -> Sockets:
    """An /object_info entry's input and output sockets in slot order, as the frontend makes them: required, then
    optional inputs, in input_order, leaving out widgets and hidden inputs."""
    inputs = []
    for section in ("required", "optional"):
        for name in entry.get("input_order", {}).get(section, ()):
            kind, *rest = entry["input"][section][name]
            options = rest[0] if rest else {}
            is_widget = isinstance(kind, list) or (kind in WIDGET_TYPES and not options.get("forceInput"))
            if not is_widget:
                inputs.append((name, kind))
    outputs = tuple(zip(entry["output_name"], entry["output"], strict=True))
    return tuple(inputs), outputs


@functools.lru_cache(maxsize=None)
def pack_object_info() -> dict:
    """The pack's registered nodes (nodes/__init__.py) as ComfyUI's server describes them: node type -> entry.
    Imports ComfyUI in this process (devtools/bootstrap.py) on the first call."""
    from . import bootstrap

    bootstrap.import_pack()
    from .. import nodes as pack_nodes  # after the bootstrap: the node modules import ComfyUI

    async def node_classes():
        return await (await pack_nodes.comfy_entrypoint()).get_node_list()

    entries = {}
    for node_class in asyncio.run(node_classes()):
        entry = node_class.GET_NODE_INFO_V1()
        entries[entry["name"]] = entry
    return entries


@functools.lru_cache(maxsize=None)
def core_snapshot() -> dict:
    """The pinned snapshot: {"comfyui_version": ..., "nodes": {node type: /object_info entry}}."""
    try:
        with open(SNAPSHOT_PATH, encoding="utf-8") as handle:
            snapshot = json.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"no {SNAPSHOT_PATH}; write it with: {REFRESH_COMMAND}") from None
    if not isinstance(snapshot, dict) or not {"comfyui_version", "nodes"} <= set(snapshot):
        raise ValueError(f"{SNAPSHOT_PATH} lacks comfyui_version or nodes; rewrite it with: {REFRESH_COMMAND}")
    return snapshot


def without_server_files(node_type: str, entry: dict) -> dict:
    """The entry with the options of the inputs that list the server's files (a loader's model files,
    LOADER_INPUTS; an upload input's files) emptied, so that entries from different servers compare."""
    entry = copy.deepcopy(entry)
    for section in ("required", "optional"):
        for name, spec in entry.get("input", {}).get(section, {}).items():
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if (node_type, name) not in LOADER_INPUTS and not any(options.get(flag) for flag in UPLOAD_FLAGS):
                continue
            if isinstance(spec[0], list):  # V1 combo: [[files], {...}]
                spec[0] = []
            elif "options" in options:  # V3 combo: ["COMBO", {"options": [files], ...}]
                options["options"] = []
    return entry


def snapshot_of(object_info: dict, comfyui_version: str, node_types) -> dict:
    """What core_nodes_object_info.json holds, from a server's /object_info answer."""
    missing = sorted(set(node_types) - set(object_info))
    if missing:
        raise KeyError(f"the ComfyUI {comfyui_version} server lists no node type {', '.join(missing)}; "
                       "do the workflows name a node of a newer ComfyUI or of another pack?")
    return {"comfyui_version": comfyui_version,
            "nodes": {node_type: without_server_files(node_type, object_info[node_type])
                      for node_type in sorted(node_types)}}


def refresh_core_snapshot(node_types, log=print) -> str:
    """Start a ComfyUI server (the host copy, without this pack), take its /object_info entries of `node_types`
    and write them to SNAPSHOT_PATH."""
    import tempfile

    from ..runner import comfy_host, paths

    with tempfile.TemporaryDirectory(prefix="icedit-object-info-") as workdir:
        process = comfy_host.ComfyProcess(comfyui_path=paths.comfyui_path(), python=sys.executable, workdir=workdir)
        log(f"starting ComfyUI from {process.comfyui_path} for its /object_info ...")
        try:
            server = process.start()
            version = server.get_json("/system_stats")["system"]["comfyui_version"]
            snapshot = snapshot_of(server.object_info(), version, node_types)
        finally:
            process.stop()
    with open(SNAPSHOT_PATH, "w", encoding="utf-8") as handle:
        json.dump(snapshot, handle, indent=1)  # the server's key order: inputs read in order
        handle.write("\n")
    core_snapshot.cache_clear()
    log(f"wrote {SNAPSHOT_PATH} (ComfyUI {version}, {len(snapshot['nodes'])} node types)")
    return SNAPSHOT_PATH


def object_info_entry(node_type: str) -> dict:
    """The /object_info entry of a pack node or of a core node of the snapshot."""
    entry = pack_object_info().get(node_type) or core_snapshot()["nodes"].get(node_type)
    if entry is None:
        raise KeyError(f"node type {node_type!r} is neither a pack node (nodes/__init__.py) nor in {SNAPSHOT_PATH}; "
                       f"for a core node, add it to a workflow and run: {REFRESH_COMMAND}")
    return entry


def node_sockets(node_type: str) -> Sockets:
    """The sockets of a pack node, a core node of the snapshot, or a frontend-only node."""
    if node_type in FRONTEND_NODES:
        return FRONTEND_NODES[node_type]
    return sockets(object_info_entry(node_type))


def widget_names(entry: dict) -> list[str]:
    """The entry's widget inputs in order (required, then optional): what a UI-format node's widgets_values
    hold, for a node without seed widgets (the frontend stores a seed's control_after_generate after it)."""
    socket_names = {name for name, _ in sockets(entry)[0]}
    return [name for section in ("required", "optional") for name in entry.get("input_order", {}).get(section, ())
            if name not in socket_names]
