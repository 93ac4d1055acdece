"""The Early Filter (ICEdit paper, section 3.3): several seeds run a few steps, a judge picks the best, only the
winner is sampled to the end. Bookkeeping and selection only; sampling lives in the ComfyUI node.

Two ways to pick, both given a judge:
- pairwise: the paper's bubble-sort-like running maximum, M - 1 comparisons of (current best, challenger);
- absolute: every candidate scored on its own (VIEScore-style), the highest wins.
"""
from __future__ import annotations

from dataclasses import dataclass, field

PAPER, RESUME = "paper", "resume"
SEED_LIMIT = 2 ** 64  # ComfyUI's seeds are unsigned 64-bit


def consecutive_seeds(seed: int, count: int) -> list[int]:
    """seed, seed + 1, ... wrapped past 2**64 - 1 to 0, so the largest seed a widget allows still works."""
    return [(seed + i) % SEED_LIMIT for i in range(count)]


def evaluations_per_step(cfg: float) -> int:
    """Model evaluations of one sampling step: one at cfg 1 (ComfyUI then skips the negative), two with a real cfg
    (the prompt and the negative)."""
    return 1 if cfg == 1.0 else 2


def nfe(mode: str, candidates: int, early_steps: int, steps: int, cfg: float = 1.0) -> int:
    """Model evaluations of one Early Filter run (evaluations_per_step of each candidate's steps).
    paper: each candidate runs its own early_steps-step schedule, the winner is re-run for `steps`;
    resume: candidates run the first early_steps of the `steps` schedule, the winner continues from there."""
    per_step = evaluations_per_step(cfg)
    if mode == PAPER:
        return per_step * (steps + candidates * early_steps)
    if mode == RESUME:
        return per_step * (candidates * early_steps + steps - early_steps)
    raise ValueError(f"unknown Early Filter mode {mode!r}; use {PAPER!r} or {RESUME!r}")


def check_settings(mode: str, candidates: int, early_steps: int, steps: int) -> None:
    nfe(mode, candidates, early_steps, steps)  # validates the mode
    if candidates < 1:
        raise ValueError(f"candidates = {candidates}; at least 1 is needed")
    if early_steps < 1:
        raise ValueError(f"early_steps = {early_steps}; at least 1 is needed")
    if mode == RESUME and early_steps >= steps:
        raise ValueError(f"resume mode continues the winner from step {early_steps} of {steps}: early_steps must "
                         "be smaller than steps")


@dataclass
class Comparison:
    incumbent: int
    challenger: int
    winner: int
    choice: int | None  # 1 = the first image shown, 2 = the second, None = the answer could not be read
    reason: str


@dataclass
class Selection:
    winner: int
    mode: str  # "pairwise" or "absolute"
    comparisons: list[Comparison] = field(default_factory=list)
    scores: list[dict | None] = field(default_factory=list)

    def report(self, seeds: list[int]) -> str:
        lines = []
        if self.mode == "pairwise":
            for c in self.comparisons:
                verdict = (f"kept #{c.incumbent} (answer not readable)" if c.choice is None
                           else f"#{c.winner} wins")
                lines.append(f"#{c.incumbent} (seed {seeds[c.incumbent]}) vs #{c.challenger} "
                             f"(seed {seeds[c.challenger]}): {verdict} - {c.reason}")
        else:
            for index, scores in enumerate(self.scores):
                if scores is None:
                    lines.append(f"#{index} (seed {seeds[index]}): no readable score")
                else:
                    details = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in scores.items())
                    lines.append(f"#{index} (seed {seeds[index]}): {details}")
        lines.append(f"winner: #{self.winner} (seed {seeds[self.winner]})")
        return "\n".join(lines)


def tournament(count: int, compare) -> Selection:
    """The paper's running maximum. `compare(incumbent, challenger)` returns (choice, reason), choice 1 for the
    incumbent (shown first), 2 for the challenger, None when the judge's answer could not be read - then the
    incumbent stays, so an unreadable answer never changes the pick."""
    if count < 1:
        raise ValueError("no candidates to choose from")
    selection = Selection(winner=0, mode="pairwise")
    for challenger in range(1, count):
        incumbent = selection.winner
        choice, reason = compare(incumbent, challenger)
        winner = challenger if choice == 2 else incumbent
        selection.comparisons.append(Comparison(incumbent, challenger, winner, choice, reason))
        selection.winner = winner
    return selection


def best_by_score(scores: list[dict | None], key: str = "overall") -> Selection:
    """The highest `key` wins; the earliest on ties; unreadable (None) scores never win unless all are."""
    if not scores:
        raise ValueError("no candidates to choose from")
    ranked = [(s[key] if s is not None and s.get(key) is not None else float("-inf"), -i)
              for i, s in enumerate(scores)]
    winner = -max(ranked)[1]
    return Selection(winner=winner, mode="absolute", scores=list(scores))
