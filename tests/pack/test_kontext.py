"""FLUX.1 Kontext [dev] as an editor, in-process on ComfyUI's real classes: a tiny Flux without Fill channels
(supported_models.Flux, as ComfyUI detects Kontext), the smoke VAE and text encoders. Its encode is ComfyUI's own
Kontext graph; the Early Filter and the checked turns give what a plain KSampler run of the same seed gives; a
mismatched model, conditioning or layout is refused before sampling."""
from __future__ import annotations

import comfy.sample
import nodes as comfy_nodes
import pytest
import torch
from comfy_extras.nodes_edit_model import ReferenceLatent
from comfy_extras.nodes_flux import FluxGuidance, FluxKontextImageScale

from comfyui_icedit.devtools import smoke_models
from comfyui_icedit.icedit_core import diptych as dip
from comfyui_icedit.icedit_core import editors
from comfyui_icedit.icedit_core.judge.heuristic import HeuristicJudge
from comfyui_icedit.nodes import edit_path
from comfyui_icedit.nodes.edit import ICEditCrop, ICEditModelSamplingFlux
from comfyui_icedit.nodes.editors import ICEditKontextEncode
from comfyui_icedit.nodes.multiturn import ICEditMultiTurn
from comfyui_icedit.nodes.sampler import ICEditEarlyFilterSampler
from icedit_testing.judges import BrightestJudge


@pytest.fixture(scope="module")
def kontext():
    return smoke_models.build_flux_kontext(smoke_models.TINY_FLUX_KONTEXT, seed=0)


@pytest.fixture(scope="module")
def source():
    return torch.rand((1, 37, 50, 3), generator=torch.Generator().manual_seed(5))


@pytest.fixture(scope="module")
def encoded(clip, vae, source):
    return ICEditKontextEncode.execute(clip, vae, source, "  make it red ", 2.5, kontext_size=False)


def ksampler(model, inputs, seed, steps=4):
    positive, negative, latent = inputs
    (sampled,) = comfy_nodes.KSampler().sample(model, seed, steps, 1.0, "euler", "simple", positive, negative, latent,
                                               denoise=1.0)
    return sampled["samples"]


def test_the_encode_is_comfyuis_kontext_graph(clip, vae, source, encoded):
    positive, negative, latent, layout, instruction = encoded.result
    assert instruction == "make it red" and encoded.ui.as_dict()["text"][0].startswith("Prompt: ")
    # kontext_size off: the source's own size rounded to multiples of 16 (50x37 -> 48x32), lanczos as Kontext's scale.
    assert (layout.working_width, layout.working_height) == (48, 32) and latent["samples"].shape == (1, 16, 4, 6)
    assert (layout.source_width, layout.source_height) == (50, 37) and torch.equal(layout.sources, source)
    # The stock nodes wired by hand give the same conditioning, bit for bit.
    working = edit_path.working_image(source, kontext_size=False)
    (stock_latent,) = comfy_nodes.VAEEncode().encode(vae, working)
    (text,) = comfy_nodes.CLIPTextEncode().encode(clip, "make it red")
    stock = FluxGuidance.execute(ReferenceLatent.execute(text, stock_latent).result[0], 2.5).result[0]
    assert torch.equal(latent["samples"], stock_latent["samples"])
    assert torch.equal(positive[0][0], stock[0][0]) and positive[0][1]["guidance"] == 2.5
    assert torch.equal(positive[0][1]["reference_latents"][0], stock_latent["samples"])
    assert torch.count_nonzero(negative[0][0]) == 0 and "reference_latents" not in negative[0][1]


def test_kontext_size_is_fluxkontextimagescale():
    image = torch.rand((1, 70, 100, 3), generator=torch.Generator().manual_seed(1))
    scaled = edit_path.working_image(image, kontext_size=True)
    assert torch.equal(scaled, FluxKontextImageScale.execute(image).result[0])
    assert tuple(scaled.shape[1:3]) == (832, 1248)  # 1248x832, the preferred size nearest to 10:7


def test_the_sampler_sees_the_source_as_reference_tokens(kontext, encoded):
    seen = []

    def record(apply_model, args):
        seen.append(args["c"]["ref_latents"])
        return apply_model(args["input"], args["timestep"], **args["c"])

    model = kontext.clone()
    model.set_model_unet_function_wrapper(record)
    positive, negative, latent = encoded.result[:3]
    ksampler(model, (positive, negative, latent), seed=1, steps=2)
    assert len(seen) == 2 and torch.equal(seen[0][0], kontext.model.process_latent_in(latent["samples"]))


def early_filter(kontext, vae, encoded, judge, **overrides):
    positive, negative, latent, layout, instruction = encoded.result
    args = dict(model=kontext, positive=positive, negative=negative, latent=latent, vae=vae, judge=judge,
                layout=layout, instruction=instruction, seed=200, candidates=4, early_steps=2, steps=4, cfg=1.0,
                sampler_name="euler", scheduler="simple", mode="resume", judge_mode="pairwise", batch_size=0)
    return ICEditEarlyFilterSampler.execute(**{**args, **overrides}).result


# The candidates run as one batch, a lone KSampler run as a batch of one: on this CPU the two agree to the last bit
# in paper mode and within float rounding in resume mode, as for ICEdit (tests/pack/test_early_filter.py).
RESUME_TOLERANCE = 1e-5


@pytest.mark.parametrize("mode", ["resume", "paper"])
def test_the_early_filter_winner_is_the_plain_ksampler_run_of_its_seed(kontext, vae, encoded, mode):
    latent, previews, winner_seed, report = early_filter(kontext, vae, encoded, BrightestJudge(), mode=mode)
    alone = ksampler(kontext, encoded.result[:3], winner_seed)
    if mode == "paper":
        assert torch.equal(latent["samples"], alone)
    else:
        assert (latent["samples"] - alone).abs().max() <= RESUME_TOLERANCE
    nfe = {"resume": 4 * 2 + 4 - 2, "paper": 4 + 4 * 2}[mode]
    assert f"NFE {nfe}" in report and 200 <= winner_seed < 204
    # Previews: the whole candidates in the source's frame, 50x37 scaled to at most the 48x32 working pixels.
    assert previews.shape == (4, 34, 46, 3)
    assert winner_seed == 200 + int(torch.stack([p.mean() for p in previews]).argmax())


def test_the_early_filter_counts_kontext_evaluations(kontext, vae, encoded):
    calls = []
    model = kontext.clone()
    model.set_model_unet_function_wrapper(lambda apply, args: calls.append(args["input"].shape[0]) or
                                          apply(args["input"], args["timestep"], **args["c"]))
    early_filter(model, vae, encoded, HeuristicJudge(), candidates=3, early_steps=1, steps=3)
    assert sum(calls) == 3 * 1 + 3 - 1


def test_the_early_filter_refuses_a_kontext_model_with_a_step_cache(kontext, vae, encoded):
    from comfy_extras.nodes_easycache import EasyCacheNode

    cached = EasyCacheNode.execute(kontext, 0.2, 0.15, 0.95, False).result[0]
    with pytest.raises(ValueError, match="EasyCache or LazyCache"):
        early_filter(cached, vae, encoded, HeuristicJudge())


def test_crop_maps_the_whole_image_back_to_the_source_size(vae, encoded, source):
    layout = encoded.result[3]
    decoded = torch.rand((2, 32, 48, 3), generator=torch.Generator().manual_seed(2))
    edited, comparison = ICEditCrop.execute(decoded, layout, check_source=True).result
    assert edited.shape == (2, 37, 50, 3) and comparison.shape == (2, 37, 100, 3)
    assert torch.equal(edited, dip.resize_images(decoded, 50, 37))
    assert torch.equal(comparison[:, :, :50], source.repeat(2, 1, 1, 1))
    with pytest.raises(ValueError, match=r"worked at 48x32.*different sources"):
        ICEditCrop.execute(torch.rand((1, 32, 32, 3)), layout)


def test_mismatched_models_conditionings_and_layouts_are_refused(kontext, tiny_flux_fill, vae, encoded, fill_inputs):
    positive, negative, latent, layout, instruction = encoded.result
    judge = BrightestJudge()
    with pytest.raises(ValueError, match=r"FLUX\.1 Kontext \[dev\] samples with .* ComfyUI's FluxInpaint"):
        early_filter(tiny_flux_fill, vae, encoded, judge)
    with pytest.raises(ValueError, match="carries FLUX.1 Fill channels"):  # a Kontext model with Fill conditioning
        early_filter(kontext, vae, encoded, judge, positive=fill_inputs["positive"])
    with pytest.raises(ValueError, match=r"ICEdit \(FLUX\.1 Fill\) samples with FLUX\.1 Fill.*ComfyUI's Flux"):
        early_filter(kontext, vae, encoded, judge, layout=fill_inputs["layout"])
    with pytest.raises(ValueError, match="has no Fill channels - it carries reference latents"):
        early_filter(tiny_flux_fill, vae, encoded, judge, layout=fill_inputs["layout"])
    with pytest.raises(ValueError, match="ICEdit Flux Shift works on ICEdit's diptych, but this layout is FLUX.1 Kon"):
        ICEditModelSamplingFlux.execute(kontext, layout, 1.15, 0.5)
    assert judge.seen == []  # nothing was sampled or judged


def test_multi_turn_kontext_turns_are_the_single_edit_graph(kontext, clip, vae, source):
    args = dict(model=kontext, clip=clip, vae=vae, image=source, instructions="make it red\nadd a hat", seed=7,
                steps=2, panel_width=32, guidance=2.5, sampler_name="euler", scheduler="simple",
                editor=editors.FLUX_KONTEXT, kontext_size=False)
    final, turns, log = ICEditMultiTurn.execute(**args).result
    assert log.splitlines()[0] == "editor: FLUX.1 Kontext [dev], guidance 2.5"
    current = source
    for index, instruction in enumerate(["make it red", "add a hat"]):
        positive, negative, latent, layout, _ = ICEditKontextEncode.execute(clip, vae, current, instruction, 2.5,
                                                                            kontext_size=False).result
        samples = ksampler(kontext, (positive, negative, latent), 7 + index, steps=2)
        decoded = comfy_nodes.VAEDecode().decode(vae, {"samples": samples})[0]
        current = ICEditCrop.execute(decoded, layout).result[0]
        assert torch.equal(turns[index + 1], current[0]), f"turn {index + 1}"
    assert torch.equal(final, current) and final.shape == source.shape


def test_checked_kontext_turns_retry_and_log(kontext, clip, vae, source):
    scores = iter([2.0, 8.0])

    class Scripted(HeuristicJudge):
        def score(self, original, edit, instruction):
            value = next(scores)
            return {"semantic_consistency": value, "overall": value}

    args = dict(model=kontext, clip=clip, vae=vae, image=source, instructions="make it red", seed=30, steps=2,
                panel_width=32, guidance=2.5, sampler_name="euler", scheduler="simple", judge=Scripted(),
                min_score=6.0, tries=3, editor=editors.FLUX_KONTEXT, kontext_size=False)
    final, _, log = ICEditMultiTurn.execute(**args).result
    assert "turn 1 try 1: seed 30" in log and "turn 1 try 2: seed 31" in log and "try 3" not in log
    plain = ICEditMultiTurn.execute(**{**args, "judge": None, "seed": 31}).result[0]
    assert torch.equal(final, plain)


def test_the_icedit_paths_are_the_diptych_functions_bit_for_bit(fill_inputs, vae):
    """ICEdit through the editor-generic code is what it was: its crop is crop_edit, its judge views the panels."""
    layout = fill_inputs["layout"]
    decoded = vae.decode(fill_inputs["latent"]["samples"].repeat(2, 1, 1, 1))
    edited, comparison = editors.map_back(decoded, layout)
    expected = dip.crop_edit(decoded, layout)
    assert torch.equal(edited, expected[0]) and torch.equal(comparison, expected[1])
    original, candidates = editors.judge_views(decoded, layout)
    assert torch.equal(original, dip.source_panels(layout)[0])
    assert torch.equal(candidates, dip.panels(decoded, layout)[1])
    assert torch.equal(ICEditCrop.execute(decoded, layout, check_source=False).result[0], expected[0])


def test_a_lone_kontext_run_uses_comfyuis_sampler(kontext, encoded):
    """The reference the exactness tests compare with is comfy.sample with the seed's noise, as KSampler runs it."""
    positive, negative, latent = encoded.result[:3]
    noise = comfy.sample.prepare_noise(latent["samples"], 5)
    direct = comfy.sample.sample(kontext, noise, 4, 1.0, "euler", "simple", positive, negative, latent["samples"],
                                 denoise=1.0, disable_pbar=True, seed=5)
    assert torch.equal(direct, ksampler(kontext, encoded.result[:3], 5))
