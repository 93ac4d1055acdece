"""Test setup: the real ComfyUI (the copy made by scripts/setup.sh, or $COMFYUI_PATH) and the pack imported as
ComfyUI would import it. Nothing of ComfyUI is mocked."""
from __future__ import annotations

import importlib.util
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_bootstrap():
    """headless/bootstrap.py on its own (stdlib only): it imports ComfyUI and then the pack as a package."""
    spec = importlib.util.spec_from_file_location("icedit_bootstrap", os.path.join(REPO, "headless", "bootstrap.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bootstrap = _load_bootstrap()
bootstrap.import_pack()  # from here on the headless package is comfyui_icedit.headless
sys.path.insert(0, os.path.join(REPO, "tests"))  # test helpers (reference_flux, ui_smoke)

CACHE = os.environ.get("ICEDIT_CACHE", os.path.expanduser("~/.cache/icedit-comfyui"))


@pytest.fixture(scope="session")
def smoke_models_dir() -> str:
    from comfyui_icedit.headless.smoke_models import ensure_smoke_models

    return ensure_smoke_models(CACHE)


@pytest.fixture(scope="session")
def comfy_server(smoke_models_dir, tmp_path_factory):
    """A real ComfyUI server (main.py, headless) with the pack and the smoke-test models."""
    from comfyui_icedit.headless import comfy_host

    workdir = str(tmp_path_factory.mktemp("comfy-server"))
    yaml_path = comfy_host.write_extra_model_paths(os.path.join(workdir, "extra_model_paths.yaml"),
                                                   os.path.join(REPO, ".host", "custom_nodes"), [smoke_models_dir])
    server = comfy_host.ComfyServer(comfyui_path=bootstrap.comfyui_path(), python=sys.executable,
                                    extra_model_paths=yaml_path, workdir=workdir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smoke_files(smoke_models_dir) -> dict[str, str]:
    """The smoke-test model files, registered in folder_paths like ComfyUI's own model folders: role -> name."""
    import folder_paths
    from comfyui_icedit.headless import smoke_models

    for kind, _ in smoke_models.SMOKE_FILES.values():
        folder_paths.add_model_folder_path(kind, os.path.join(smoke_models_dir, kind))
    return {role: name for role, (_, name) in smoke_models.SMOKE_FILES.items()}


@pytest.fixture(scope="session")
def clip(smoke_files):
    from comfyui_icedit.nodes.smoke_test import ICEditSmokeTestCLIPLoader

    return ICEditSmokeTestCLIPLoader.execute(smoke_files["text_encoders"]).result[0]


@pytest.fixture(scope="session")
def vae(smoke_files):
    import nodes as comfy_nodes

    return comfy_nodes.VAELoader().load_vae(smoke_files["vae"])[0]
