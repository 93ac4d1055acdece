"""Hugging Face model folders (config.json, weights, processor files) as the local judge and the text mask load
them: the cheap checks before transformers reads anything."""
from __future__ import annotations

import os

WEIGHT_SUFFIXES = (".safetensors", ".bin")


def has_config(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "config.json"))


def has_weights(folder: str) -> bool:
    """Any weight file (*.safetensors or *.bin, sharded or not) in the folder."""
    return any(name.endswith(WEIGHT_SUFFIXES) for name in os.listdir(folder))
