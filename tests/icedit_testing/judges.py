"""Scripted judges (the pack's own Judge protocol) that make the Early Filter's pick predictable in tests."""
from __future__ import annotations

from comfyui_icedit.icedit_core.judge.protocol import Judge


class BrightestJudge(Judge):
    """Prefers the brighter preview; records what it was shown."""

    name = "brightest"

    def __init__(self):
        self.seen = []
        self.originals = []

    def compare(self, original, edit_1, edit_2, instruction):
        self.originals.append(original)
        self.seen += [edit_1, edit_2]
        return (2 if edit_2.mean() > edit_1.mean() else 1), "brighter"

    def score(self, original, edit, instruction):
        self.seen.append(edit)
        return {"overall": float(edit.mean())}
