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


RUNNER_FILES = sorted(name for name in os.listdir(os.path.join(REPO, "runner")) if name.endswith(".py"))


@pytest.mark.parametrize("name", RUNNER_FILES)
def test_the_runner_never_imports_comfyui(name):
    """The runner is a client of ComfyUI servers; what imports ComfyUI in-process lives in devtools/."""
    assert not imported_modules(os.path.join(REPO, "runner", name)) & HOST_MODULES


# The checkout's rooms, as they would be imported with the checkout's folder on sys.path: a second name for a module
# that is also comfyui_icedit.<room>.* (the pack's `nodes` is left out: that name is ComfyUI's nodes module).
ROOMS = ("runner", "devtools", "bench", "icedit_core", "headless", "icedit_bootstrap", "bootstrap", "common")
PACKAGE_ROOMS = ("runner", "devtools", "bench", "icedit_core", "nodes")


def checkout_python_files():
    for root, folders, files in os.walk(REPO):
        folders[:] = [f for f in folders if not f.startswith(".") and f != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                yield os.path.relpath(os.path.join(root, name), REPO)


@pytest.mark.parametrize("path", sorted(checkout_python_files()))
def test_every_module_of_the_checkout_is_imported_by_one_name(path):
    """Inside the package (the rooms and the root __init__), by relative imports, as ComfyUI loads the pack under its
    folder's name; everywhere else as comfyui_icedit.* (runner/paths.py). Never by file path, never through a
    sys.path edit (devtools/bootstrap.py alone puts ComfyUI first)."""
    full = os.path.join(REPO, path)
    with open(full, encoding="utf-8") as handle:
        source = handle.read()
    second_names = sorted(m for m in dotted_imports(full) if m.split(".")[0] in ROOMS)
    assert not second_names, f"{path} imports {second_names}: import them as comfyui_icedit.<room>.<module>"
    inside = path == "__init__.py" or path.split(os.sep)[0] in PACKAGE_ROOMS
    if inside:
        absolute = sorted(m for m in dotted_imports(full) if m.split(".")[0] == "comfyui_icedit")
        assert not absolute, f"{path} imports {absolute}: inside the package, import relatively"
    loads_by_path, edits_sys_path = _path_tricks(ast.parse(source, path))
    assert not loads_by_path, f"{path} loads a module by file path (line {loads_by_path[0]})"
    if path != os.path.join("devtools", "bootstrap.py"):
        assert not edits_sys_path, f"{path} edits sys.path (line {edits_sys_path[0]})"


def _path_tricks(tree) -> tuple[list[int], list[int]]:
    """Lines that call importlib's spec_from_file_location, and lines that change sys.path."""
    by_path, sys_path = [], []
    is_sys_path = lambda node: (isinstance(node, ast.Attribute) and node.attr == "path"  # noqa: E731
                                and isinstance(node.value, ast.Name) and node.value.id == "sys")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "spec_from_file_location":
                by_path.append(node.lineno)
            elif is_sys_path(node.func.value):
                sys_path.append(node.lineno)
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(is_sys_path(t.value if isinstance(t, ast.Subscript) else t) for t in targets):
                sys_path.append(node.lineno)
    return by_path, sys_path


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
    assert not tops & {"runner", "devtools", "bench", "scripts", "tests", ".ci", "requirements-headless.txt",
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
