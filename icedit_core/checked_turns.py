"""Checked turns: a turn of a multi-turn edit is scored by a judge against that turn's instruction (VIEScore's
semantic consistency, SC = min(editing success, over-editing), 0..10); below the threshold it is tried again with
the next seed, up to a number of tries, and the best try is kept. Bookkeeping only; sampling and judging are
callables the ComfyUI node supplies.
"""
from __future__ import annotations

from dataclasses import dataclass, field

SCORE_KEY = "semantic_consistency"  # VIEScore SC: did the edit do what the turn asked, and nothing more


@dataclass
class Try:
    seed: int
    scores: dict | None  # the judge's VIEScore dict, None when its answer could not be read

    @property
    def score(self) -> float | None:
        return None if self.scores is None else self.scores.get(SCORE_KEY)


@dataclass
class CheckedTurn:
    tries: list[Try] = field(default_factory=list)
    kept: int = 0  # index into tries
    result: object = None  # what try_edit returned for the kept try

    def report(self, turn: int, min_score: float) -> list[str]:
        lines = []
        for index, attempt in enumerate(self.tries):
            score = "unreadable score" if attempt.score is None else f"SC {attempt.score:.1f}"
            verdict = "kept" if index == self.kept else "not kept"
            below = "" if attempt.score is not None and attempt.score >= min_score else f" (below {min_score:g})"
            lines.append(f"turn {turn} try {index + 1}: seed {attempt.seed}, {score}{below}: {verdict}")
        return lines


def run_checked_turn(seeds: list[int], try_edit, score, min_score: float) -> CheckedTurn:
    """Try `try_edit(seed)` with each seed in turn until `score(result)` reaches `min_score`; keep the best try
    (the first to reach the threshold, else the highest score, the earliest on ties; unreadable scores rank last).
    Only the kept try's result is held, so memory does not grow with the number of tries."""
    if not seeds:
        raise ValueError("a checked turn needs at least one try")
    turn = CheckedTurn()
    best = float("-inf")
    for seed in seeds:
        result = try_edit(seed)
        attempt = Try(seed, score(result))
        turn.tries.append(attempt)
        value = attempt.score if attempt.score is not None else float("-inf")
        if value > best or turn.result is None:
            best, turn.kept, turn.result = value, len(turn.tries) - 1, result
        if attempt.score is not None and attempt.score >= min_score:
            break
    return turn
