"""Prompts: the in-context templates (pure icedit_core)."""
from __future__ import annotations

import pytest

from comfyui_icedit.icedit_core import prompts


def test_released_prompt_is_the_trained_text():
    text = prompts.build_prompt("make the sky red", prompts.resolve_template("released"))
    assert text == ("A diptych with two side-by-side images of the same scene. On the right, the scene is exactly "
                    "the same as on the left but make the sky red")


def test_instruction_goes_in_verbatim_less_surrounding_space():
    text = prompts.build_prompt("  add a sign saying {hello}\n", "X {instruction}")
    assert text == "X add a sign saying {hello}"


def test_paper_and_custom_templates():
    assert "identical to the left but" in prompts.build_prompt("x", prompts.resolve_template("paper"))
    assert prompts.build_prompt("x", prompts.resolve_template("custom", "edit: {instruction}!")) == "edit: x!"


@pytest.mark.parametrize("instruction", ["", "   ", "\n\t"])
def test_empty_instruction_is_refused(instruction):
    with pytest.raises(ValueError, match="instruction is empty"):
        prompts.build_prompt(instruction)


def test_template_without_instruction_field_is_refused():
    with pytest.raises(ValueError, match=r"must contain \{instruction\}"):
        prompts.resolve_template("custom", "A diptych with no place for the edit")
    with pytest.raises(ValueError, match="unknown template"):
        prompts.resolve_template("nonsense")
