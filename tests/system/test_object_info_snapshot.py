"""The pinned snapshot of ComfyUI's core nodes (devtools/core_nodes_object_info.json, which the workflow builder
takes their sockets from) is what a real server's /object_info says, and the pack's sockets as the builder reads
them in-process are the ones that server gives its nodes."""
from __future__ import annotations

import pytest

from comfyui_icedit.devtools import node_info

SNAPSHOT = node_info.core_snapshot()


@pytest.fixture(scope="module")
def object_info(comfy_server) -> dict:
    return comfy_server.object_info()


def test_the_snapshot_is_of_the_servers_comfyui(comfy_server):
    version = comfy_server.get_json("/system_stats")["system"]["comfyui_version"]
    assert SNAPSHOT["comfyui_version"] == version, f"the snapshot is of ComfyUI {SNAPSHOT['comfyui_version']}: " \
        f"run {node_info.REFRESH_COMMAND}"


@pytest.mark.parametrize("node_type", sorted(SNAPSHOT["nodes"]))
def test_the_snapshot_entry_is_the_servers(object_info, node_type):
    assert node_type in object_info, f"the server lists no {node_type}"
    served = node_info.without_server_files(node_type, object_info[node_type])
    assert served == SNAPSHOT["nodes"][node_type], f"{node_type} changed: run {node_info.REFRESH_COMMAND}"


def test_the_server_lists_files_the_snapshot_leaves_out(object_info):
    """The test server has the smoke-test models: the loaders' lists differ from the snapshot's empty ones."""
    assert object_info["UNETLoader"]["input"]["required"]["unet_name"][0], "the server lists no diffusion model"
    assert SNAPSHOT["nodes"]["UNETLoader"]["input"]["required"]["unet_name"][0] == []


@pytest.mark.parametrize("node_type", sorted(node_info.pack_object_info()))
def test_the_pack_nodes_sockets_read_in_process_are_the_servers(object_info, node_type):
    assert node_info.sockets(object_info[node_type]) == node_info.node_sockets(node_type)
