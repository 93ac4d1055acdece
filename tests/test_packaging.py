"""The pack's structure and metadata: registry checks, docs, the core's independence from the host."""
from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST_MODULES = {"comfy", "comfy_api", "comfy_extras", "comfy_execution", "nodes", "folder_paths", "server",
                "execution", "node_helpers"}


def test_comfy_registry_validation_passes():
    comfy_cli = os.path.join(os.path.dirname(sys.executable), "comfy")
    result = subprocess.run([comfy_cli, "--skip-prompt", "--no-enable-telemetry", "node", "validate"], cwd=REPO,
                            capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "All validation checks passed" in output, output
    assert "Security warnings" not in output, output


def icedit_core_files():
    folder = os.path.join(REPO, "icedit_core")
    for root, _, files in os.walk(folder):
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(root, name)


def imported_modules(path) -> set[str]:
    """The top-level names a Python file imports (relative imports left out)."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    return imported


@pytest.mark.parametrize("path", list(icedit_core_files()), ids=os.path.basename)
def test_icedit_core_never_imports_the_host(path):
    assert not imported_modules(path) & HOST_MODULES


# The headless runner is a client of ComfyUI servers; only the smoke-model generator (and bootstrap, which sets
# up its in-process ComfyUI) import ComfyUI.
IN_PROCESS_FILES = ("bootstrap.py", "smoke_models.py", "make_smoke_models.py")
HEADLESS_CLIENT_FILES = sorted(name for name in os.listdir(os.path.join(REPO, "headless"))
                               if name.endswith(".py") and name not in IN_PROCESS_FILES)


@pytest.mark.parametrize("name", HEADLESS_CLIENT_FILES)
def test_the_headless_runner_never_imports_comfyui(name):
    assert not imported_modules(os.path.join(REPO, "headless", name)) & HOST_MODULES


def test_every_listed_dependency_is_imported_by_the_pack():
    """requirements.txt and pyproject's dependencies list nothing that no code of the pack imports."""
    imported = set()
    for folder in ("icedit_core", "nodes"):
        for root, _, files in os.walk(os.path.join(REPO, folder)):
            imported |= {module for name in files if name.endswith(".py")
                         for module in imported_modules(os.path.join(root, name))}
    with open(os.path.join(REPO, "requirements.txt"), encoding="utf-8") as handle:
        listed = [line.split(">=")[0].split("==")[0].strip() for line in handle if line.strip()
                  and not line.startswith("#")]
    assert listed and all(name.replace("-", "_") in imported for name in listed), (listed, sorted(imported))


def test_icedit_core_imports_without_comfyui_on_the_path():
    code = ("import sys, importlib.util, os; root = sys.argv[1];"
            "spec = importlib.util.spec_from_file_location('core', os.path.join(root, 'icedit_core', '__init__.py'),"
            " submodule_search_locations=[os.path.join(root, 'icedit_core')]);"
            "m = importlib.util.module_from_spec(spec); sys.modules['core'] = m; spec.loader.exec_module(m);"
            "import core.diptych, core.prompts, core.adapter_file;"
            "assert not [k for k in sys.modules if k.split('.')[0] in ('comfy', 'folder_paths', 'nodes')]")
    result = subprocess.run([sys.executable, "-c", code, REPO], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr


def pack_nodes():
    import asyncio

    from comfyui_icedit.nodes import comfy_entrypoint

    return asyncio.run(asyncio.run(comfy_entrypoint()).get_node_list())


def test_the_smoke_test_loader_is_registered_only_on_request(monkeypatch):
    from comfyui_icedit.headless.model_files import SMOKE_NODES_ENV
    from comfyui_icedit.nodes import smoke_test

    assert SMOKE_NODES_ENV == smoke_test.SMOKE_NODES_ENV  # the runner and the pack name the same variable
    monkeypatch.delenv(SMOKE_NODES_ENV, raising=False)
    assert "ICEditSmokeTestCLIPLoader" not in {node.define_schema().node_id for node in pack_nodes()}
    monkeypatch.setenv(SMOKE_NODES_ENV, "1")
    assert "ICEditSmokeTestCLIPLoader" in {node.define_schema().node_id for node in pack_nodes()}


def test_every_node_schema_is_valid(monkeypatch):
    """What ComfyUI checks when it registers the pack (a failure there drops every node of the pack)."""
    monkeypatch.setenv("ICEDIT_SMOKE_TEST_NODES", "1")  # every node, the smoke-test loader included
    nodes = pack_nodes()
    assert len({node.define_schema().node_id for node in nodes}) == len(nodes)
    for node in nodes:
        node.define_schema().validate()


def test_every_node_has_a_doc_page(monkeypatch):
    monkeypatch.setenv("ICEDIT_SMOKE_TEST_NODES", "1")
    for node in pack_nodes():
        node_id = node.define_schema().node_id
        path = os.path.join(REPO, "web", "docs", f"{node_id}.md")
        assert os.path.isfile(path), f"no doc page for {node_id}"
        with open(path, encoding="utf-8") as handle:
            assert handle.read().strip(), f"{path} is empty"
