"""Qwen-Image-Edit-2509 as an editor, in-process on ComfyUI's real classes with the smoke Qwen-Image (1 block),
its VAE and text encoder (devtools/smoke_qwen.py): the encode is ComfyUI's TextEncodeQwenImageEditPlus, the Early
Filter's winner is the plain KSampler run of its seed at a real cfg, and another editor's model or text encoder is
refused before sampling. The reference is 0.01 megapixels here (at 1 MP one smoke model call takes 36 s on a CPU);
tests/system/test_qwen_reference.py shows the 1-megapixel default is the stock node's output. In-process, but in
this tier: even the 1-block smoke Qwen-Image is 380 M parameters (1.5 GB loaded), too much for the fast tier."""
from __future__ import annotations

import nodes as comfy_nodes
import pytest
import torch
from comfy_extras.nodes_model_advanced import ModelSamplingAuraFlow
from comfy_extras.nodes_post_processing import ImageScaleToTotalPixels
from comfy_extras.nodes_qwen import TextEncodeQwenImageEditPlus

from comfyui_icedit.icedit_core import editors
from comfyui_icedit.icedit_core import early_filter as ef
from comfyui_icedit.nodes.edit import ICEditCrop
from comfyui_icedit.nodes.editors import ICEditQwenImageEditEncode
from comfyui_icedit.nodes.sampler import ICEditEarlyFilterSampler
from icedit_testing.judges import BrightestJudge

SMALL_REFERENCE = 0.01  # megapixels: a 64x48 source becomes 118x89, 112x88 after the VAE's 8-pixel crop
CFG = 2.5  # ComfyUI's Qwen-Image-Edit-2509 template


@pytest.fixture(autouse=True)
def like_comfyuis_executor():
    """ComfyUI runs nodes under torch.inference_mode() (execution.py); without it autograd records every
    operation on the 1.5 GB of loaded weights, three times slower."""
    with torch.inference_mode():
        yield


@pytest.fixture(scope="module")
def source():
    return torch.rand((1, 48, 64, 3), generator=torch.Generator().manual_seed(4))


@pytest.fixture(scope="module")
def encoded(qwen_clip, qwen_vae, source):
    with torch.inference_mode():
        return ICEditQwenImageEditEncode.execute(qwen_clip, qwen_vae, source, " make it red ", "blurry",
                                                 reference_megapixels=SMALL_REFERENCE)


@pytest.fixture(scope="module")
def shifted(qwen_model):
    return ModelSamplingAuraFlow().patch_aura(qwen_model, 3.0)[0]


def test_the_encode_is_the_plus_node_with_the_source_as_reference(qwen_clip, qwen_vae, source, encoded):
    positive, negative, latent, layout, instruction = encoded.result
    assert instruction == "make it red"
    scaled = ImageScaleToTotalPixels.execute(source, "area", SMALL_REFERENCE).result[0]
    (reference,) = comfy_nodes.VAEEncode().encode(qwen_vae, scaled)
    assert latent["samples"].shape == (1, 16, 1, 11, 14) and torch.equal(latent["samples"], reference["samples"])
    assert (layout.working_width, layout.working_height) == (112, 88) and (layout.source_width, layout.source_height) \
        == (64, 48)
    for conditioning, text in ((positive, "make it red"), (negative, "blurry")):
        stock = TextEncodeQwenImageEditPlus.execute(qwen_clip, text, None, image1=source).result[0]
        assert torch.equal(conditioning[0][0], stock[0][0])  # text and vision: the stock node's, bit for bit
        assert [r.shape for r in conditioning[0][1]["reference_latents"]] == [reference["samples"].shape]
        assert torch.equal(conditioning[0][1]["reference_latents"][0], reference["samples"])


def ksampler(model, encoded, seed, steps=3):
    positive, negative, latent = encoded.result[:3]
    (sampled,) = comfy_nodes.KSampler().sample(model, seed, steps, CFG, "euler", "simple", positive, negative, latent,
                                               denoise=1.0)
    return sampled["samples"]


# The candidates run as one batch, a lone KSampler run as a batch of one (prompt and negative each): on this CPU
# they agree within float rounding, as for ICEdit and Kontext.
RESUME_TOLERANCE = 1e-4


def test_the_early_filter_winner_is_the_plain_ksampler_run_and_counts_both_cfg_passes(shifted, qwen_vae, encoded):
    positive, negative, latent, layout, instruction = encoded.result
    calls = []
    model = shifted.clone()
    model.set_model_unet_function_wrapper(lambda apply, args: calls.append(args["input"].shape[0]) or
                                          apply(args["input"], args["timestep"], **args["c"]))
    judge = BrightestJudge()
    winner, previews, winner_seed, report = ICEditEarlyFilterSampler.execute(
        model, positive, negative, latent, qwen_vae, judge, layout, instruction, 70, 3, 1, 3, CFG, "euler", "simple",
        "resume", "pairwise", 0).result
    assert sum(calls) == ef.nfe("resume", 3, 1, 3, CFG) == 2 * (3 * 1 + 3 - 1)
    assert f"NFE {ef.nfe('resume', 3, 1, 3, CFG)}" in report
    assert previews.shape == (3, 48, 64, 3)  # the source's frame: 64x48 is within the 112x88 working pixels
    assert winner["samples"].shape == latent["samples"].shape
    alone = ksampler(shifted, encoded, winner_seed)
    assert (winner["samples"] - alone).abs().max() <= RESUME_TOLERANCE
    decoded = comfy_nodes.VAEDecode().decode(qwen_vae, winner)[0]
    edited = ICEditCrop.execute(decoded, layout).result[0]
    assert edited.shape == (1, 48, 64, 3) and torch.isfinite(edited).all()


def test_another_editors_model_or_text_encoder_is_refused_before_sampling(shifted, tiny_flux_fill, qwen_vae, encoded,
                                                                          fill_inputs):
    positive, negative, latent, layout, instruction = encoded.result
    judge = BrightestJudge()

    def run(model, **overrides):
        args = dict(model=model, positive=positive, negative=negative, latent=latent, vae=qwen_vae, judge=judge,
                    layout=layout, instruction=instruction, seed=1, candidates=2, early_steps=1, steps=2, cfg=CFG,
                    sampler_name="euler", scheduler="simple", mode="resume", judge_mode="pairwise", batch_size=0)
        return ICEditEarlyFilterSampler.execute(**{**args, **overrides})

    with pytest.raises(ValueError, match=r"Qwen-Image-Edit\(-2509\) samples with Qwen-Image .* ComfyUI's FluxInpaint"):
        run(tiny_flux_fill)
    with pytest.raises(ValueError, match="text conditioning is 64 wide, but this Qwen-Image-Edit.* model reads 3584"):
        run(shifted, positive=fill_inputs["positive"])  # Flux's T5 with Qwen-Image
    with pytest.raises(ValueError, match=r"ICEdit \(FLUX\.1 Fill\) samples with FLUX\.1 Fill, but the model is "
                                         "ComfyUI's QwenImage"):
        run(shifted, layout=fill_inputs["layout"])
    assert judge.seen == []


def test_a_qwen_text_encoder_with_a_flux_model_is_refused(tiny_flux_fill, fill_inputs, encoded, vae):
    with pytest.raises(ValueError, match=r"text conditioning is 3584 wide, but this ICEdit \(FLUX\.1 Fill\) model reads "
                                         r"64: .*Qwen2\.5-VL with a Flux model"):
        ICEditEarlyFilterSampler.execute(tiny_flux_fill, encoded.result[0], fill_inputs["negative"],
                                         fill_inputs["latent"], vae, BrightestJudge(), fill_inputs["layout"], "x", 1,
                                         2, 1, 2, 1.0, "euler", "simple", "resume", "pairwise", 0)
    assert editors.EDITORS[editors.QWEN_IMAGE_EDIT].cfg == CFG


def test_multi_turn_qwen_turns_are_the_single_edit_graph(shifted, qwen_clip, qwen_vae, source):
    from comfyui_icedit.nodes.multiturn import ICEditMultiTurn

    args = dict(model=shifted, clip=qwen_clip, vae=qwen_vae, image=source, instructions="make it red\nadd a hat",
                seed=7, steps=2, panel_width=32, guidance=2.5, sampler_name="euler", scheduler="simple",
                editor=editors.QWEN_IMAGE_EDIT, negative_prompt="blurry", reference_megapixels=SMALL_REFERENCE)
    final, turns, log = ICEditMultiTurn.execute(**args).result
    assert log.splitlines()[0] == "editor: Qwen-Image-Edit(-2509), cfg 2.5"
    current = source
    for index, instruction in enumerate(["make it red", "add a hat"]):
        encoded = ICEditQwenImageEditEncode.execute(qwen_clip, qwen_vae, current, instruction, "blurry",
                                                    reference_megapixels=SMALL_REFERENCE)
        samples = ksampler(shifted, encoded, 7 + index, steps=2)
        decoded = comfy_nodes.VAEDecode().decode(qwen_vae, {"samples": samples})[0]
        current = ICEditCrop.execute(decoded, encoded.result[3]).result[0]
        assert torch.equal(turns[index + 1], current[0]), f"turn {index + 1}"
    assert torch.equal(final, current) and final.shape == source.shape
