"""Threads per server: without a GPU, N local servers each get about cores / N threads (OMP_NUM_THREADS, which
torch reads for its intra-op threads), unless the user set OMP_NUM_THREADS; servers the run does not start are
left alone. Pure runner logic: nothing is started."""
from __future__ import annotations

import os

import pytest

from comfyui_icedit.runner import engine
from comfyui_icedit.runner.worker import EditWorker


@pytest.fixture
def machine(monkeypatch):
    """A machine with `cores` usable cores and `gpus` visible GPUs, and no OMP_NUM_THREADS of the user's."""
    def make(cores=8, gpus=0):
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(engine, "_usable_cores", lambda: cores)
        monkeypatch.setattr(engine, "_visible_gpus", lambda: gpus)
    return make


def threads(count, **config):
    return engine._threads_per_server(engine.RunConfig(output="out", **config), count)


def test_n_servers_without_a_gpu_share_the_cores(machine):
    machine(cores=8)
    assert [threads(n, workers=n) for n in (2, 3, 4, 8, 16)] == ["4", "2", "2", "1", "1"]


def test_one_server_a_gpu_or_servers_not_ours_keep_torchs_default(machine):
    machine(cores=8)
    assert threads(1) is None  # one server: every core is its own
    assert threads(2, servers=["http://a:8188", "http://b:8188"]) is None  # running servers: not ours to size
    assert threads(4, workers=4, ray_address="auto") is None  # a cluster's machines have cores of their own
    machine(cores=8, gpus=2)
    assert threads(2, workers=2) is None  # the GPU computes; torch's CPU threads barely matter


def test_the_users_omp_num_threads_wins(machine, monkeypatch):
    machine(cores=8)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads(2, workers=2) == "3"
    assert threads(1) == "3"


def test_the_run_says_what_it_chose_and_the_worker_hands_it_to_its_server(machine, tmp_path):
    machine(cores=2)
    said = []
    config = engine.RunConfig(output=str(tmp_path), workers=2, comfyui_path=str(tmp_path))
    setup = engine._worker_setup(config, {}, False, 2, said.append)
    assert setup["omp_num_threads"] == "1"
    assert said == ["no GPU: each of the 2 ComfyUI servers computes with 1 of this machine's 2 cores "
                    "(set OMP_NUM_THREADS to choose)"]
    worker = EditWorker({**setup, "custom_nodes": str(tmp_path), "model_dirs": []}, "w1")
    try:
        assert worker.process.env["OMP_NUM_THREADS"] == "1"
    finally:
        worker.stop()
    assert not os.path.exists(worker.process.workdir)
