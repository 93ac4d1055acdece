"""Hugging Face model folders (config.json + weights + processor files) under ComfyUI's models directory:
models/vlm/ for judges, models/metrics/ for the metric models. Each folder name may also be set in
extra_model_paths.yaml."""
from __future__ import annotations

import os

import folder_paths


def register_folder(name: str) -> str:
    folder_paths.add_model_folder_path(name, os.path.join(folder_paths.models_dir, name))
    return name


def model_folders(kind: str, marker: str = "config.json") -> list[str]:
    """Model folders (holding `marker`: config.json, or adapter_config.json for a LoRA) under every path of
    `kind`, one or two levels down (org/name)."""
    found = set()
    for root in folder_paths.get_folder_paths(kind):
        if not os.path.isdir(root):
            continue
        for first in sorted(os.listdir(root)):
            path = os.path.join(root, first)
            if os.path.isfile(os.path.join(path, marker)):
                found.add(first)
            elif os.path.isdir(path):
                for second in sorted(os.listdir(path)):
                    if os.path.isfile(os.path.join(path, second, marker)):
                        found.add(f"{first}/{second}")
    return sorted(found)


def model_folder_path(kind: str, name: str, marker: str = "config.json") -> str:
    for root in folder_paths.get_folder_paths(kind):
        path = os.path.join(root, name)
        if os.path.isfile(os.path.join(path, marker)):
            return path
    raise ValueError(f"no {kind} model folder {name!r} under {folder_paths.get_folder_paths(kind)}")
