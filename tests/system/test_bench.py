"""The benchmark scripts still run (tiny settings; the numbers themselves are not checked here)."""
from __future__ import annotations

import json
import subprocess
import sys



def test_moe_step_benchmark_runs_and_reports_every_variant(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "comfyui_icedit.bench.moe_step", "--hidden", "128",
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
    result = subprocess.run([sys.executable, "-m", "comfyui_icedit.bench.early_filter", "--hidden", "128",
                             "--heads", "2", "--double", "1", "--single", "1", "--panel-width", "32",
                             "--candidates", "2", "--early-steps", "1", "--steps", "3", "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(out.read_text())
    assert [results[v]["nfe"] for v in ("naive_best_of_m", "paper", "resume")] == [2 * 3, 3 + 2 * 1, 2 * 1 + 3 - 1]


def test_batch_scale_benchmark_measures_one_and_two_workers(tmp_path):
    """One item: its cost is the servers' and Ray's starts, whatever the count; one is enough to show both runs
    end to end (with two workers, one of them then waits)."""
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "comfyui_icedit.bench.batch_scale", "--items", "1",
                             "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(out.read_text())
    for key in ("one_worker", "two_workers"):
        row = results[key]
        assert row["items"] == 1 and row["items_per_second"] > 0
        assert 0 <= row["engine_overhead_share"] < 1
        assert 0 < row["executor_seconds_per_item"] <= row["worker_seconds_per_item"]
    assert results["speedup_2_vs_1"] == round(results["two_workers"]["items_per_second"]
                                              / results["one_worker"]["items_per_second"], 3)
    assert "2 workers / 1 worker" in result.stdout
    # One item is every worker's first: no steady rate (tests/pack/test_bench_steady_rate.py checks the sum).
    assert results["one_worker"]["steady_items_per_second"] is None and results["steady_speedup_2_vs_1"] is None


def test_edit_latency_benchmark_times_every_phase_of_both_edits(tmp_path):
    out = tmp_path / "bench.json"
    candidates, early_steps, steps = 2, 1, 3
    result = subprocess.run([sys.executable, "-m", "comfyui_icedit.bench.edit_latency", "--hidden", "128",
                             "--heads", "2", "--double", "1", "--single", "1", "--panel-width", "32",
                             "--candidates", str(candidates), "--early-steps", str(early_steps), "--steps", str(steps),
                             "--repeats", "1", "--warmup", "0", "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(out.read_text())
    plain, early = results["plain_edit"], results["early_filter"]
    for phase in ("diptych", "text_encode", "vae_encode", "flux_shift", "sampling", "vae_decode", "crop", "total"):
        assert plain["phases_ms"][phase] > 0, phase
    for phase in ("candidates", "judge", "preview_decode", "comparisons", "winner", "total"):
        assert early["phases_ms"][phase] > 0, phase
    assert plain["sampling_per_step_ms"] > 0 and plain["nfe"] == steps
    assert early["nfe"] == candidates * early_steps + steps - early_steps
    assert results["ratios"]["total"] == early["phases_ms"]["total"] / plain["phases_ms"]["total"]
    assert results["machine"]["torch"] and "Early Filter / plain" in result.stdout
