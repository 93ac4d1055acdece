"""Test setup for every tier. tests/core needs no host; tests/pack and tests/system import the real ComfyUI (the
copy made by scripts/setup.sh, or $COMFYUI_PATH) in their own conftest. Nothing of ComfyUI is mocked.

The fixtures below import ComfyUI only when a test asks for them, so the core tier never loads it."""
from __future__ import annotations

import os
import sys

import pytest

from icedit_testing import CACHE, REPO

if not os.path.isdir(os.path.join(REPO, ".host", "python", "comfyui_icedit")):
    raise pytest.UsageError("no .host/python/comfyui_icedit link: run scripts/setup.sh (scripts/test does) first")

from comfyui_icedit.runner import paths  # noqa: E402  (after the check above, for its clearer message)

# Child Pythons (the runner's CLI, the benchmarks) import the checkout as the tests do.
os.environ.update(PYTHONPATH=paths.python_env()["PYTHONPATH"])


@pytest.fixture(scope="session")
def smoke_models_dir() -> str:
    from comfyui_icedit.devtools.smoke_models import ensure_smoke_models

    return ensure_smoke_models(CACHE)


@pytest.fixture(scope="session")
def comfy_server(smoke_models_dir, tmp_path_factory):
    """A real ComfyUI server (main.py, headless) with the pack and the smoke-test models."""
    from comfyui_icedit.runner import comfy_host
    from comfyui_icedit.icedit_core.model_files import SMOKE_NODES_ENV

    workdir = str(tmp_path_factory.mktemp("comfy-server"))
    yaml_path = comfy_host.write_extra_model_paths(os.path.join(workdir, "extra_model_paths.yaml"),
                                                   os.path.join(REPO, ".host", "custom_nodes"), [smoke_models_dir])
    process = comfy_host.ComfyProcess(comfyui_path=paths.comfyui_path(), python=sys.executable,
                                      extra_model_paths=yaml_path, workdir=workdir, env={SMOKE_NODES_ENV: "1"})
    yield process.start()  # the client; its .process is the server's folder, log and lifetime
    process.stop()


@pytest.fixture(scope="session")
def smoke_files(smoke_models_dir) -> dict[str, str]:
    """The smoke-test model files, registered in folder_paths like ComfyUI's own model folders: role -> name."""
    import folder_paths

    from comfyui_icedit.devtools import smoke_models

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


@pytest.fixture(scope="session")
def tiny_flux_fill():
    """A tiny random-weight FLUX.1 Fill (ComfyUI's own classes) as a ModelPatcher, for in-process sampling."""
    from comfyui_icedit.devtools import smoke_models

    return smoke_models.build_flux_fill(smoke_models.TINY_FLUX_FILL, seed=0)


@pytest.fixture(scope="session")
def qwen_files(smoke_files) -> dict[str, str]:
    """The Qwen-Image-Edit smoke files' names as the loaders list them: qwen_unet, qwen_text_encoder, qwen_vae."""
    return {role: smoke_files[role] for role in ("qwen_unet", "qwen_text_encoder", "qwen_vae")}


@pytest.fixture(scope="session")
def qwen_model(qwen_files):
    """The 1-block smoke Qwen-Image through the stock UNETLoader (fp32 on a CPU: 1.5 GB, loaded once)."""
    import nodes as comfy_nodes

    return comfy_nodes.UNETLoader().load_unet(qwen_files["qwen_unet"], "default")[0]


@pytest.fixture(scope="session")
def qwen_vae(qwen_files):
    import nodes as comfy_nodes

    return comfy_nodes.VAELoader().load_vae(qwen_files["qwen_vae"])[0]


@pytest.fixture(scope="session")
def qwen_clip(qwen_files):
    from comfyui_icedit.nodes.smoke_test import ICEditSmokeTestQwenCLIPLoader

    return ICEditSmokeTestQwenCLIPLoader.execute(qwen_files["qwen_text_encoder"]).result[0]


@pytest.fixture(scope="session")
def metric_models(tmp_path_factory):
    """Tiny random-weight CLIP and DINO folders, registered under ComfyUI's models/metrics/."""
    import folder_paths

    from comfyui_icedit.devtools.smoke_models import save_tiny_clip, save_tiny_dino

    root = tmp_path_factory.mktemp("models") / "metrics"
    clip, dino = save_tiny_clip(str(root / "tiny-clip")), save_tiny_dino(str(root / "tiny-dino"))
    folder_paths.add_model_folder_path("metrics", str(root))
    return clip, dino


@pytest.fixture(scope="session")
def fill_inputs(clip, vae):
    """One small source through ICEdit Diptych → Prompt Encode → Fill Conditioning (smoke encoders and VAE): what
    a sampler takes, for the in-process sampling tests."""
    import torch

    from comfyui_icedit.nodes.edit import ICEditDiptych, ICEditFillConditioning, ICEditPromptEncode

    image = torch.rand((1, 40, 48, 3), generator=torch.Generator().manual_seed(3))
    diptych, mask, layout = ICEditDiptych.execute(image, 32).result
    positive, negative, _, instruction = ICEditPromptEncode.execute(clip, "make it red", "released", "", 50.0).result
    positive, negative, latent = ICEditFillConditioning.execute(positive, negative, vae, diptych, mask).result
    return {"positive": positive, "negative": negative, "latent": latent, "vae": vae, "layout": layout,
            "instruction": instruction}
