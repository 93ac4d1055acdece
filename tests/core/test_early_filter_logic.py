"""The Early Filter's bookkeeping and selection (pure icedit_core, no ComfyUI): model-evaluation counts, seeds,
the pairwise running maximum and the absolute ranking."""
from __future__ import annotations

import pytest

from comfyui_icedit.icedit_core import early_filter as ef


def test_nfe_formulas():
    assert ef.nfe("paper", 6, 10, 50) == 110  # the paper's 6 x 10 + 50
    assert ef.nfe("resume", 6, 10, 28) == 6 * 10 + 18
    with pytest.raises(ValueError, match="unknown Early Filter mode"):
        ef.nfe("fast", 6, 10, 28)
    with pytest.raises(ValueError, match="early_steps must be smaller"):
        ef.check_settings("resume", 6, 28, 28)


def test_tournament_is_a_running_maximum_with_m_minus_1_comparisons():
    quality = [3, 9, 1, 7, 10, 2]
    calls = []

    def compare(incumbent, challenger):
        calls.append((incumbent, challenger))
        return (2 if quality[challenger] > quality[incumbent] else 1), "by quality"

    selection = ef.tournament(len(quality), compare)
    assert selection.winner == 4
    assert calls == [(0, 1), (1, 2), (1, 3), (1, 4), (4, 5)]
    assert "winner: #4 (seed 104)" in selection.report([100 + i for i in range(6)])


def test_an_unreadable_answer_keeps_the_incumbent():
    selection = ef.tournament(3, lambda a, b: (None, "gibberish"))
    assert selection.winner == 0
    assert "answer not readable" in selection.report([1, 2, 3])


def test_absolute_selection_ranks_unreadable_scores_last():
    scores = [None, {"overall": 4.0}, {"overall": 7.5}, {"overall": 7.5}]
    assert ef.best_by_score(scores).winner == 2  # the earliest of a tie
    assert ef.best_by_score([None, None]).winner == 0


def test_consecutive_seeds_wrap_past_the_largest_seed():
    assert ef.consecutive_seeds(5, 3) == [5, 6, 7]
    assert ef.consecutive_seeds(2 ** 64 - 2, 4) == [2 ** 64 - 2, 2 ** 64 - 1, 0, 1]
