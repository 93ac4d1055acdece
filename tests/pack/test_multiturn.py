"""ICEditMultiTurn in-process on ComfyUI's real classes (tiny FLUX.1 Fill, smoke VAE and text encoders): each turn
is exactly the single-edit graph (Diptych → Prompt Encode → Fill Conditioning → Flux Shift → KSampler → VAE Decode
→ Crop) run on the previous turn's result."""
from __future__ import annotations

import re

import nodes as comfy_nodes
import pytest
import torch

from comfyui_icedit.icedit_core import prompts
from comfyui_icedit.icedit_core.judge.openai_api import OpenAICompatibleJudge
from comfyui_icedit.nodes.edit import (ICEditCrop, ICEditDiptych, ICEditFillConditioning, ICEditModelSamplingFlux,
                                       ICEditPromptEncode)
from comfyui_icedit.nodes.multiturn import ICEditMultiTurn

PAPER_TEMPLATE = prompts.TEMPLATES["paper"]


@pytest.fixture(scope="module")
def args(tiny_flux_fill, clip, vae):
    image = torch.rand((1, 40, 48, 3), generator=torch.Generator().manual_seed(9))
    return dict(model=tiny_flux_fill, clip=clip, vae=vae, image=image,
                instructions="make it red\n\n  add a hat \nmake it snowy", seed=7, steps=2, panel_width=32,
                guidance=50.0, sampler_name="euler", scheduler="simple", template="released", custom_template="",
                max_shift=1.15, base_shift=0.5)


def single_edit_graph(args, image, instruction, seed, template="released", custom_template="", max_shift=1.15,
                      base_shift=0.5):
    """What the basic workflow's nodes do for one edit, node by node."""
    diptych, mask, layout = ICEditDiptych.execute(image, args["panel_width"]).result
    positive, negative, _, _ = ICEditPromptEncode.execute(args["clip"], instruction, template, custom_template,
                                                          args["guidance"]).result
    positive, negative, latent = ICEditFillConditioning.execute(positive, negative, args["vae"], diptych, mask).result
    model = ICEditModelSamplingFlux.execute(args["model"], layout, max_shift, base_shift).result[0]
    (sampled,) = comfy_nodes.KSampler().sample(model, seed, args["steps"], 1.0, args["sampler_name"],
                                               args["scheduler"], positive, negative, latent, denoise=1.0)
    decoded = comfy_nodes.VAEDecode().decode(args["vae"], sampled)[0]
    return ICEditCrop.execute(decoded, layout, check_source=False).result[0]  # random weights: noise on the left


def test_turns_chain_keep_the_size_and_reproduce(args):
    final, turns, log = ICEditMultiTurn.execute(**args).result
    image = args["image"]
    assert final.shape == image.shape and turns.shape == (4, 40, 48, 3)
    assert torch.equal(turns[0], image[0]) and torch.equal(turns[3], final[0])
    assert log.splitlines() == ["turn 1: seed 7: make it red", "turn 2: seed 8: add a hat",
                                "turn 3: seed 9: make it snowy"]
    assert not torch.equal(turns[1], turns[2])  # each turn edits the previous result
    assert torch.equal(ICEditMultiTurn.execute(**args).result[1], turns)  # the same seeds give the same images
    with pytest.raises(ValueError, match="no instructions"):
        ICEditMultiTurn.execute(**dict(args, instructions=" \n "))


def test_each_turn_is_the_single_edit_graph(args):
    settings = dict(template="custom", custom_template=PAPER_TEMPLATE, max_shift=2.0, base_shift=0.3)
    final, turns, _ = ICEditMultiTurn.execute(**dict(args, instructions="make it red\nadd a hat", **settings)).result
    current = args["image"]
    for index, instruction in enumerate(["make it red", "add a hat"]):
        current = single_edit_graph(args, current, instruction, args["seed"] + index, **settings)[:1]
        assert torch.equal(turns[index + 1], current[0]), f"turn {index + 1}"
    assert torch.equal(final, current)


def test_template_and_shift_inputs_change_the_edit(args):
    one_turn = dict(args, instructions="make it red")
    plain = ICEditMultiTurn.execute(**one_turn).result[0]
    assert not torch.equal(plain, ICEditMultiTurn.execute(**dict(one_turn, template="paper")).result[0])
    assert not torch.equal(plain, ICEditMultiTurn.execute(**dict(one_turn, max_shift=3.0)).result[0])
    with pytest.raises(ValueError, match="instruction"):
        ICEditMultiTurn.execute(**dict(one_turn, template="custom", custom_template="no field here"))


def test_seeds_wrap_past_the_largest_seed(args):
    _, _, log = ICEditMultiTurn.execute(**dict(args, seed=2 ** 64 - 2)).result
    assert [line.split(":")[1].strip() for line in log.splitlines()] == [
        f"seed {2 ** 64 - 2}", f"seed {2 ** 64 - 1}", "seed 0"]


def scores_answer(success, over_editing):
    return f'{{"score": [{success}, {over_editing}], "reasoning": "scripted"}}'


def test_checked_turns_retry_low_scores_and_keep_the_best(args):
    from icedit_testing.chat_server import ChatServer

    quality = '{"score": [8, 8], "reasoning": "fine"}'  # the perceptual-quality question of every try
    script = [(200, scores_answer(2, 9), 0), (200, quality, 0),   # turn 1, try 1: SC 2
              (200, scores_answer(3, 9), 0), (200, quality, 0),   # turn 1, try 2: SC 3
              (200, scores_answer(8, 9), 0), (200, quality, 0),   # turn 1, try 3: SC 8, kept
              (200, scores_answer(9, 7), 0), (200, quality, 0)]   # turn 2, try 1: SC 7, kept at once
    with ChatServer(script) as server:
        judge = OpenAICompatibleJudge(server.url, "judge-model", timeout=30)
        final, turns, log = ICEditMultiTurn.execute(**dict(args, instructions="make it red\nadd a hat", judge=judge,
                                                           min_score=6.0, tries=3)).result
    assert server.requests[0]["path"] == "/v1/models"  # the judge is checked before the first turn samples
    lines = log.splitlines()
    assert lines == ["turn 1: make it red",
                     "turn 1 try 1: seed 7, SC 2.0 (below 6): not kept",
                     "turn 1 try 2: seed 8, SC 3.0 (below 6): not kept",
                     "turn 1 try 3: seed 9, SC 8.0: kept",
                     "turn 2: add a hat",
                     "turn 2 try 1: seed 10, SC 7.0: kept",
                     f"NFE {(3 + 1) * args['steps']} (api judge, min SC 6, up to 3 tries per turn)"]
    # The result is a plain run of the kept seeds, turn by turn.
    first = single_edit_graph(args, args["image"], "make it red", 9)[:1]
    second = single_edit_graph(args, first, "add a hat", 10)[:1]
    assert torch.equal(turns[1], first[0]) and torch.equal(final, second)


def test_a_turn_whose_tries_all_score_low_keeps_the_best_and_unreadable_scores_rank_last(args):
    from icedit_testing.chat_server import ChatServer

    quality = '{"score": [8, 8]}'
    script = [(200, "no idea", 0), (200, quality, 0),            # try 1: unreadable
              (200, scores_answer(4, 9), 0), (200, quality, 0),  # try 2: SC 4, the best
              (200, scores_answer(3, 3), 0), (200, quality, 0)]  # try 3: SC 3
    with ChatServer(script) as server:
        judge = OpenAICompatibleJudge(server.url, "judge-model", timeout=30)
        final, _, log = ICEditMultiTurn.execute(**dict(args, instructions="make it red", judge=judge,
                                                       min_score=6.0, tries=3, seed=20)).result
    assert log.splitlines()[1:4] == ["turn 1 try 1: seed 20, unreadable score (below 6): not kept",
                                     "turn 1 try 2: seed 21, SC 4.0 (below 6): kept",
                                     "turn 1 try 3: seed 22, SC 3.0 (below 6): not kept"]
    assert torch.equal(final, single_edit_graph(args, args["image"], "make it red", 21)[:1])


def test_a_turn_can_run_the_early_filter_instead_of_plain_sampling(args):
    from comfyui_icedit.icedit_core.judge.heuristic import HeuristicJudge

    final, _, log = ICEditMultiTurn.execute(**dict(args, instructions="make it red", judge=HeuristicJudge(),
                                                   min_score=0.0, tries=1, early_filter_candidates=3,
                                                   early_steps=1)).result
    picked = re.search(r"try seed 7: Early Filter over seeds 7..9 picked seed (\d+)", log)
    assert picked, log
    assert f"NFE {3 * 1 + args['steps'] - 1} " in log and "Early Filter 3 x 1 steps per try" in log
    # Resume mode: the winner's run equals that seed run alone (to float rounding).
    alone = single_edit_graph(args, args["image"], "make it red", int(picked.group(1)))[:1]
    assert (final - alone).abs().max() < 2e-3
    with pytest.raises(ValueError, match="needs a judge"):
        ICEditMultiTurn.execute(**dict(args, instructions="make it red", early_filter_candidates=3))
