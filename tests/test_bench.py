"""The benchmark scripts still run (tiny settings; the numbers themselves are not checked here)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_moe_step_benchmark_runs_and_reports_every_variant(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, os.path.join(REPO, "bench", "moe_step.py"), "--hidden", "128",
                             "--heads", "2", "--double", "1", "--single", "1", "--height", "32", "--width", "64",
                             "--text-tokens", "8", "--rank", "4", "--repeats", "2", "--warmup", "0",
                             "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(out.read_text())
    for variant in ("unpatched", "icedit_moe_loader", "naive_unmerged_looped"):
        assert len(results[variant]["times_ms"]) == 2 and results[variant]["median_ms"] > 0
    assert results["unpatched"]["ratio"] == 1.0
    assert "routed per token" in result.stdout


def test_early_filter_benchmark_counts_the_model_evaluations(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, os.path.join(REPO, "bench", "early_filter.py"), "--hidden", "128",
                             "--heads", "2", "--double", "1", "--single", "1", "--panel-width", "32",
                             "--candidates", "2", "--early-steps", "1", "--steps", "3", "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(out.read_text())
    assert [results[v]["nfe"] for v in ("naive_best_of_m", "paper", "resume")] == [2 * 3, 3 + 2 * 1, 2 * 1 + 3 - 1]


def test_batch_scale_benchmark_measures_one_and_two_workers(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, os.path.join(REPO, "bench", "batch_scale.py"), "--items", "2",
                             "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(out.read_text())
    for key in ("one_worker", "two_workers"):
        row = results[key]
        assert row["items"] == 2 and row["items_per_second"] > 0
        assert 0 <= row["engine_overhead_share"] < 1
        assert 0 < row["executor_seconds_per_item"] <= row["worker_seconds_per_item"]
    assert results["speedup_2_vs_1"] == round(results["two_workers"]["items_per_second"]
                                              / results["one_worker"]["items_per_second"], 3)
    assert "2 workers / 1 worker" in result.stdout
