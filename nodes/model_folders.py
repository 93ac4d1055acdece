"""Validation of model-file inputs. ComfyUI 0.3.75 checks a V1 combo's value against its list when a prompt is
queued, but not a V3 combo's; these give our loaders the same up-front error (custom_validation_failed)."""
from __future__ import annotations

import folder_paths


def check_listed(value: str, choices: list[str], where: str) -> bool | str:
    if value in choices:
        return True
    return (f"{value!r} is not in {where} ({len(choices)} entries there); put the file there or pick one that is, "
            "then refresh (R) the node list")


def check_model_file(folder_name: str, value: str) -> bool | str:
    return check_listed(value, folder_paths.get_filename_list(folder_name), f"models/{folder_name}")
