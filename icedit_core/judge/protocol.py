"""The judge protocol: what the Early Filter asks of a judge and what it gets back.

A judge compares two edits of one original (pairwise: 1, 2 or None, and a reason) or scores one edit
(absolute: VIEScore-style). Chat judges (a local VLM, an HTTP endpoint) only need `ask(images, prompt)`; the
prompts and the reading of answers are shared here.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

from PIL import Image

from ..images import to_pil
from . import editscore, parsing, prompts

VIESCORE, EDITSCORE = "viescore", "editscore"  # how a chat judge scores: VIEScore's 0-10 prompts, or EditScore's
SCORINGS = (VIESCORE, EDITSCORE)


class JudgeError(RuntimeError):
    """A judge could not answer at all (model missing, server down); the message says why and what to do."""


def viescore(semantic: list[float] | None, perceptual: list[float] | None, reasoning: str = "") -> dict | None:
    """VIEScore: SC = min(editing success, over-editing), PQ = min(naturalness, artifacts),
    overall = sqrt(SC * PQ), all on 0..10. None when either part could not be read."""
    if semantic is None or perceptual is None:
        return None
    sc, pq = min(semantic), min(perceptual)
    return {"editing_success": semantic[0], "over_editing": semantic[1], "semantic_consistency": sc,
            "naturalness": perceptual[0], "artifacts": perceptual[1], "perceptual_quality": pq,
            "overall": math.sqrt(sc * pq), "reasoning": reasoning}


class Judge(ABC):
    name = "judge"

    def check(self) -> None:
        """Raise JudgeError when the judge surely cannot answer (no server, no weights). Called before sampling,
        so it must be cheap; the default has nothing to check."""
        return None

    @abstractmethod
    def compare(self, original, edit_1, edit_2, instruction: str) -> tuple[int | None, str]:
        """Which edit is better: 1, 2, or None when the judge's answer cannot be read."""

    @abstractmethod
    def score(self, original, edit, instruction: str) -> dict | None:
        """VIEScore-style scores of one edit (see `viescore`), or None when they cannot be read."""


class ChatJudge(Judge):
    """A judge that answers prompts about images (a vision-language model). `scoring` VIESCORE asks VIEScore's
    prompts (greedy); EDITSCORE asks EditScore's (0-25, sampled, `passes` of them averaged) and compares two edits
    by those scores, since an edit reward model is trained to score, not to choose."""

    max_new_tokens = 256
    scoring = VIESCORE
    passes = 1

    def set_scoring(self, scoring: str, passes: int) -> None:
        """How this judge scores (one of SCORINGS) and, for EditScore, how many passes it averages."""
        if scoring not in SCORINGS:
            raise ValueError(f"scoring {scoring!r}: use {' or '.join(repr(s) for s in SCORINGS)}")
        if passes < 1:
            raise ValueError(f"passes = {passes}; at least 1")
        self.scoring, self.passes = scoring, passes
        if scoring == EDITSCORE:
            self.name = f"{type(self).name}, EditScore"

    @abstractmethod
    def ask(self, images: list[Image.Image], prompt: str, seed: int | None = None) -> str:
        """The model's answer to `prompt` about `images`, in order: greedy, or sampled with `seed` when given."""

    def compare(self, original, edit_1, edit_2, instruction):
        if self.scoring == EDITSCORE:
            first, second = (self.score(original, edit, instruction) for edit in (edit_1, edit_2))
            if first is None or second is None:
                return (None if first is None and second is None else 1 if second is None else 2,
                        "EditScore: an answer could not be read")
            choice = 2 if second["overall"] > first["overall"] else 1  # a tie keeps the first (the incumbent)
            return choice, f"EditScore overall {first['overall']:.2f} vs {second['overall']:.2f}"
        answer = self.ask([to_pil(edit_1), to_pil(edit_2), to_pil(original)], prompts.pairwise(instruction))
        return parsing.parse_choice(answer)

    def score(self, original, edit, instruction):
        if self.scoring == EDITSCORE:
            return editscore.score(self.ask, to_pil(original), to_pil(edit), instruction, self.passes)
        semantic, why_sc = parsing.parse_scores(
            self.ask([to_pil(original), to_pil(edit)], prompts.semantic_consistency(instruction)))
        perceptual, why_pq = parsing.parse_scores(self.ask([to_pil(edit)], prompts.perceptual_quality()))
        return viescore(semantic, perceptual, f"{why_sc} | {why_pq}")
