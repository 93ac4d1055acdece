"""icedit_core/model_files.py is the one table of the model files: README.md's model table is its rendering, and
its rows agree with the loaders' folders and the smoke-test stand-ins."""
from __future__ import annotations

import os

import pytest

from comfyui_icedit.icedit_core import model_files
from icedit_testing import REPO


def test_the_readmes_model_table_is_the_rendered_one():
    path = os.path.join(REPO, "README.md")
    with open(path, encoding="utf-8") as handle:
        readme = handle.read()
    assert model_files.with_readme_table(readme, path) == readme, (
        "README.md's model table is not what icedit_core/model_files.py renders; edit MODEL_FILES there and run: "
        "python -m comfyui_icedit.devtools.build_workflows --readme")


def test_rows_render_their_folder_file_and_source():
    lora, vlm = (next(m for m in model_files.MODEL_FILES if m.role == role) for role in ("lora", "vlm"))
    assert model_files.note_line(lora) == ("`loras/ICEdit-normal-lora/pytorch_lora_weights.safetensors`"
                                           " — RiverZ/normal-lora")
    assert model_files.note_line(vlm).startswith(
        "`vlm/Qwen2.5-VL-7B-Instruct/` — the whole Hugging Face folder Qwen/Qwen2.5-VL-7B-Instruct (the paper")
    rows = model_files.readme_table().splitlines()
    assert len(rows) == 2 + len(model_files.MODEL_FILES)
    assert "| `pytorch_lora_weights.safetensors` | `loras/ICEdit-normal-lora/` | RiverZ/normal-lora |" in rows
    assert any(row.startswith("| the whole model folder | `vlm/Qwen2.5-VL-7B-Instruct/` | Qwen/Qwen2.5-VL-7B-Instruct "
                              "(Early Filter judge; ") for row in rows)


def test_a_readme_without_the_markers_is_refused_by_name(monkeypatch):
    with pytest.raises(ValueError, match="README.md needs one line '<!-- model-files:start"):
        model_files.with_readme_table("### Model files\n\n| file |\n", "README.md")
    mixed = model_files.ModelFile(("a/x.safetensors", "b/y.safetensors"), "loras", "someone/repo", "lora")
    monkeypatch.setattr(model_files, "MODEL_FILES", (mixed,))
    with pytest.raises(ValueError, match=r"\('a/x.safetensors', 'b/y.safetensors'\)"):
        model_files.readme_table()


def test_every_row_goes_where_its_loader_and_its_stand_in_look():
    loader_folders = {folders[0] for folders in model_files.LOADER_INPUTS.values()}
    names = [name for model in model_files.MODEL_FILES for name in model.names]
    assert len(names) == len(set(names)) == len(model_files.REAL_MODELS), "a file is listed twice"
    for model in model_files.MODEL_FILES:
        assert model.folder in loader_folders, model.names
        assert model_files.SMOKE_FILES[model.role][0] == model.folder, model.names
