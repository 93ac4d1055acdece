"""ICEditEarlyFilterSampler in-process on ComfyUI's real classes: a tiny FLUX.1 Fill, the smoke VAE and text
encoders, comfy.sample. A scripted judge (the pack's own Judge protocol) makes the pick predictable."""
from __future__ import annotations

import comfy.model_management
import comfy.sample
import pytest
import torch

from comfyui_icedit.icedit_core import early_filter as ef
from comfyui_icedit.icedit_core.judge.heuristic import HeuristicJudge
from comfyui_icedit.nodes.sampler import ICEditEarlyFilterSampler
from icedit_testing.judges import BrightestJudge


@pytest.fixture(scope="module")
def setup(fill_inputs, tiny_flux_fill):
    return {"model": tiny_flux_fill, **fill_inputs}


def early_filter(setup, judge, **overrides):
    args = dict(model=setup["model"], positive=setup["positive"], negative=setup["negative"], latent=setup["latent"],
                vae=setup["vae"], judge=judge, layout=setup["layout"], instruction=setup["instruction"], seed=100,
                candidates=4, early_steps=2, steps=5, cfg=1.0, sampler_name="euler", scheduler="simple",
                mode="resume", judge_mode="pairwise", batch_size=0)
    args.update(overrides)
    latent, previews, winner_seed, report = ICEditEarlyFilterSampler.execute(**args).result
    return latent["samples"], previews, winner_seed, report


def lone_run(setup, seed, steps=5, **kwargs):
    samples = setup["latent"]["samples"]
    noise = comfy.sample.prepare_noise(samples, seed)
    return comfy.sample.sample(setup["model"], noise, steps, 1.0, "euler", "simple", setup["positive"],
                               setup["negative"], samples, denoise=1.0, disable_pbar=True, seed=seed, **kwargs)


def test_resume_mode_equals_the_winning_seed_run_alone(setup):
    judge = BrightestJudge()
    final, previews, winner_seed, report = early_filter(setup, judge)
    assert 100 <= winner_seed < 104
    assert (final - lone_run(setup, winner_seed)).abs().max() <= 1e-5
    assert previews.shape == (4, 32, 32, 3)
    brightest = int(torch.stack([p.mean() for p in previews]).argmax())
    assert winner_seed == 100 + brightest
    assert f"winner: #{brightest} (seed {winner_seed})" in report and "NFE 11" in report  # 4 x 2 + 5 - 2


def test_paper_mode_equals_the_winner_re_run(setup):
    final, previews, winner_seed, _ = early_filter(setup, BrightestJudge(), mode="paper")
    assert torch.equal(final, lone_run(setup, winner_seed))
    # Each candidate's preview is its own complete early_steps-step run.
    index = winner_seed - 100
    early = lone_run(setup, winner_seed, steps=2)
    from comfyui_icedit.icedit_core import diptych as dip
    _, expected_preview = dip.panels(setup["vae"].decode(early), setup["layout"])
    assert (previews[index] - expected_preview[0]).abs().max() <= 1e-4


@pytest.mark.parametrize("mode", ["resume", "paper"])
def test_batched_candidates_equal_unbatched(setup, mode):
    batched = early_filter(setup, BrightestJudge(), mode=mode, batch_size=0)
    one_by_one = early_filter(setup, BrightestJudge(), mode=mode, batch_size=1)
    assert batched[2] == one_by_one[2]
    assert (batched[0] - one_by_one[0]).abs().max() <= 1e-5
    assert (batched[1] - one_by_one[1]).abs().max() <= 1e-4


@pytest.mark.parametrize("judge_mode", ["pairwise", "absolute"])
def test_the_judge_sees_exactly_the_m_previews(setup, judge_mode):
    judge = BrightestJudge()
    _, previews, _, _ = early_filter(setup, judge, candidates=5, judge_mode=judge_mode)
    seen = {tuple(p.flatten()[:16].tolist()) for p in judge.seen}
    assert len(seen) == 5 and seen == {tuple(p.flatten()[:16].tolist()) for p in previews}
    if judge_mode == "pairwise":
        assert len(judge.seen) == 2 * 4  # M - 1 comparisons
        assert all(o.shape == (32, 32, 3) for o in judge.originals)


@pytest.mark.parametrize("mode", ["resume", "paper"])
def test_model_evaluations_match_the_formula(setup, mode):
    model = setup["model"].clone()
    evaluations = []

    def count(apply_model, args):
        evaluations.append(args["input"].shape[0])
        return apply_model(args["input"], args["timestep"], **args["c"])

    model.set_model_unet_function_wrapper(count)
    early_filter(dict(setup, model=model), BrightestJudge(), mode=mode, candidates=3, early_steps=2, steps=6)
    assert sum(evaluations) == ef.nfe(mode, 3, 2, 6)


def test_absolute_mode_with_the_heuristic_judge(setup):
    _, previews, winner_seed, report = early_filter(setup, HeuristicJudge(), judge_mode="absolute")
    assert "overall" in report and f"seed {winner_seed}" in report


def test_resume_mode_refuses_samplers_with_history(setup):
    with pytest.raises(ValueError, match="dpmpp_2m is not one"):
        early_filter(setup, BrightestJudge(), sampler_name="dpmpp_2m")
    with pytest.raises(ValueError, match="early_steps must be smaller"):
        early_filter(setup, BrightestJudge(), early_steps=5, steps=5)


def test_an_interruption_stops_the_run_cleanly(setup):
    class InterruptingJudge(BrightestJudge):
        def compare(self, *args):
            comfy.model_management.interrupt_current_processing(True)
            return super().compare(*args)

    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            early_filter(setup, InterruptingJudge())
    finally:
        comfy.model_management.interrupt_current_processing(False)
    final, _, winner_seed, _ = early_filter(setup, BrightestJudge())  # and the next run is unaffected
    assert (final - lone_run(setup, winner_seed)).abs().max() <= 1e-5


def test_an_unreachable_judge_is_found_before_anything_is_sampled(setup):
    import socket

    from comfyui_icedit.icedit_core.judge.openai_api import OpenAICompatibleJudge
    from comfyui_icedit.icedit_core.judge.protocol import JudgeError

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    model = setup["model"].clone()
    evaluations = []
    model.set_model_unet_function_wrapper(lambda apply_model, args: evaluations.append(1) or apply_model(
        args["input"], args["timestep"], **args["c"]))
    with pytest.raises(JudgeError, match="cannot reach the judge endpoint"):
        early_filter(dict(setup, model=model), OpenAICompatibleJudge(dead_url, "m", timeout=5))
    assert evaluations == []


def test_the_largest_seed_wraps_to_zero(setup):
    largest = 2 ** 64 - 1
    final, _, winner_seed, report = early_filter(setup, BrightestJudge(), seed=largest - 1, candidates=3)
    assert all(f"seed {s}" in report for s in (largest - 1, largest, 0))
    assert winner_seed in (largest - 1, largest, 0)
    assert (final - lone_run(setup, winner_seed)).abs().max() <= 1e-5
