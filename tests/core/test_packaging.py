"""The pack's structure and metadata: registry checks, the core's and the runner's independence from the host."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile

import pytest

from icedit_testing import HOST_MODULES, REPO


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


def dotted_imports(path) -> set[str]:
    """Every absolute module a Python file imports, dotted (`from a.b import c` gives a.b and a.b.c)."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def imported_modules(path) -> set[str]:
    """The top-level names a Python file imports (relative imports left out)."""
    return {module.split(".")[0] for module in dotted_imports(path)}


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


def test_the_registry_archive_ships_what_runs_inside_comfyui_and_nothing_else(tmp_path, monkeypatch):
    """The archive `comfy node pack` / `publish` builds: git-tracked files less .comfyignore, plus includes."""
    from comfy_cli.file_utils import zip_files

    monkeypatch.chdir(REPO)
    archive = tmp_path / "node.zip"
    zip_files(str(archive), includes=["workflows", "web"])  # pyproject's [tool.comfy] includes
    with zipfile.ZipFile(archive) as packed:
        names = packed.namelist()
    tops = {name.split("/")[0] for name in names}
    assert {"__init__.py", "nodes", "icedit_core", "web", "workflows", "docs", "pyproject.toml", "LICENSE",
            "requirements.txt"} <= tops, sorted(tops)
    assert not tops & {"headless", "bench", "scripts", "tests", ".ci", "requirements-headless.txt",
                       "requirements-dev.txt"}, sorted(tops)
    assert "nodes/sampler.py" in names and "icedit_core/diptych.py" in names and "web/docs/ICEditCrop.md" in names


def loads_the_host(module: str) -> bool:
    return module.split(".")[0] in HOST_MODULES or module.startswith("comfyui_icedit.nodes")


TIER_FOLDERS = {tier: os.path.join(REPO, "tests", tier) for tier in ("core", "icedit_testing")}
HOST_HELPERS = {f"icedit_testing.{name[:-3]}" for name in os.listdir(TIER_FOLDERS["icedit_testing"])
                if name.endswith(".py")
                and any(map(loads_the_host, dotted_imports(os.path.join(TIER_FOLDERS["icedit_testing"], name))))}


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(TIER_FOLDERS["core"]) if n.endswith(".py")))
def test_the_core_tier_never_imports_the_host(name):
    """tests/core runs without ComfyUI (scripts/test --fast also checks it at run time, tests/core/conftest.py)."""
    imported = dotted_imports(os.path.join(TIER_FOLDERS["core"], name))
    assert not [m for m in imported if loads_the_host(m) or m in HOST_HELPERS], sorted(imported)
