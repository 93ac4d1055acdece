"""The batch benchmark's steady rate: each worker's first item left out, the workers' rates added."""
from __future__ import annotations

import pytest

from comfyui_icedit.bench.batch_scale import steady_items_per_second


def line(worker, seconds, status="ok"):
    return {"worker": worker, "seconds": seconds, "status": status}


def test_each_workers_first_item_is_left_out_and_the_rates_add_up():
    lines = [line("w1", 9.0), line("w2", 8.0), line("w1", 2.0), line("w2", 1.0), line("w1", 2.0), line("w2", 1.0)]
    # w1: 2 items in 4 s, w2: 2 items in 2 s, side by side
    assert steady_items_per_second(lines) == pytest.approx(2 / 4 + 2 / 2)


def test_failed_items_do_not_count_and_a_worker_with_one_item_gives_no_rate():
    assert steady_items_per_second([line("w1", 5.0), line("w1", 1.0, "failed"), line("w1", 2.0)]) == 0.5
    assert steady_items_per_second([line("w1", 5.0), line("w1", 1.0), line("w2", 4.0)]) is None
    assert steady_items_per_second([]) is None
