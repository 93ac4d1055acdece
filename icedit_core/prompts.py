"""The in-context (IC) prompt: ICEdit's fixed diptych description followed by the user's instruction."""
from __future__ import annotations

INSTRUCTION_FIELD = "{instruction}"

# The text ICEdit was trained with (train/src/train/data.py) and the official inference scripts use.
RELEASED_TEMPLATE = ("A diptych with two side-by-side images of the same scene. On the right, the scene is "
                     "exactly the same as on the left but {instruction}")
# The wording of the paper, section 3.1 (not the trained text).
PAPER_TEMPLATE = ("A diptych with two side-by-side images of the same scene. On the right, the scene is "
                  "identical to the left but {instruction}")

TEMPLATES = {
    "released": RELEASED_TEMPLATE,
    "paper": PAPER_TEMPLATE,
}
CUSTOM = "custom"


def resolve_template(name: str, custom_template: str = "") -> str:
    """The template text for a named choice, or the custom text when `name` is "custom"."""
    if name == CUSTOM:
        template = custom_template
    elif name in TEMPLATES:
        template = TEMPLATES[name]
    else:
        raise ValueError(f"unknown template {name!r}; choose one of {sorted(TEMPLATES) + [CUSTOM]}")
    if INSTRUCTION_FIELD not in template:
        raise ValueError(f"the {name} template must contain {INSTRUCTION_FIELD} where the instruction goes; "
                         f"got {template!r}")
    return template


def split_instructions(text: str) -> list[str]:
    """One instruction per non-empty line, for multi-turn editing."""
    turns = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not turns:
        raise ValueError("no instructions: write one edit per line, e.g. 'make the sky red'")
    return turns


def build_prompt(instruction: str, template: str = RELEASED_TEMPLATE) -> str:
    """Fill the template. The instruction goes in as written, less surrounding white space (a text box's
    trailing newline would otherwise become part of what the text encoder reads)."""
    text = (instruction or "").strip()
    if not text:
        raise ValueError("the edit instruction is empty; write what to change, e.g. 'make the sky red'")
    if INSTRUCTION_FIELD not in template:
        raise ValueError(f"the template must contain {INSTRUCTION_FIELD}; got {template!r}")
    # str.replace, not str.format: the instruction or template may contain other braces.
    return template.replace(INSTRUCTION_FIELD, text)
