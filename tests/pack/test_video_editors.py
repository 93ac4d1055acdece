"""Video for every editor (issue 19, item 4), on ComfyUI's real classes: ICEdit Video Noise for the whole-frame
latents FLUX.1 Kontext and Qwen-Image-Edit sample ([T, C, H, W], and Qwen's [T, C, 1, H, W]), and ICEdit Video
Sampler cutting their per-frame reference latents with the frames. The Kontext model is the tiny random Flux
ComfyUI detects as Kontext (devtools/smoke_models); the clip translates 8 px (one latent pixel) right per frame."""
from __future__ import annotations

import pytest
import torch
from comfy_extras.nodes_custom_sampler import BasicGuider, BasicScheduler, KSamplerSelect, SamplerCustomAdvanced

from comfyui_icedit.devtools import smoke_models
from comfyui_icedit.icedit_core import editors
from comfyui_icedit.icedit_core import video_noise as vn
from comfyui_icedit.nodes.editors import ICEditKontextEncode
from comfyui_icedit.nodes.video import ICEditVideoNoise, ICEditVideoSampler, guider_for_frames
from icedit_testing import video_clips
from icedit_testing.sampling import FixedNoise

FRAMES, SIZE, STEP, SEED = 6, 64, 8, 20240611


@pytest.fixture(scope="module")
def kontext():
    return smoke_models.build_flux_kontext(smoke_models.TINY_FLUX_KONTEXT, seed=0)


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    return video_clips.translating_frames(frames=FRAMES, size=SIZE, step=STEP, seed=2)


@pytest.fixture(scope="module")
def encoded(clip, vae, frames):
    """The clip's frames through ICEdit Kontext Encode as one batch (at their own 64x64: kontext_size off)."""
    return ICEditKontextEncode.execute(clip, vae, frames, "make it red", 2.5, kontext_size=False).result


def few_ties(noise: torch.Tensor) -> bool:
    """No value twice within a frame, but for chance float ties (plain randn of a few thousand values has one in
    about 5 % of seeds)."""
    return all(frame.numel() - frame.unique().numel() <= 2 for frame in noise)


def test_flow_noise_for_kontext_frames_moves_one_latent_pixel_per_frame(encoded):
    _, _, latent, frame, _ = encoded
    assert isinstance(frame, editors.WholeImageFrame) and tuple(latent["samples"].shape) == (FRAMES, 16, 8, 8)
    output = ICEditVideoNoise.execute(frame, vn.FLOW, SEED, vn.LATENT_PIXEL)
    noise = output.result[0].generate_noise(latent)
    assert tuple(noise.shape) == (FRAMES, 16, 8, 8) and few_ties(noise)
    for t in range(FRAMES - 1):
        before, after = noise[t], noise[t + 1]
        assert torch.equal(after[:, :, 1:], before[:, :, :-1]), t  # what stays in view moved one latent pixel
        # The entering column is fresh: none of its 128 values in frame t, but for a chance float tie.
        assert int(torch.isin(after[:, :, 0], before).sum()) <= 2, t
    assert output.result[0].carried.fresh_fraction() == [1 / 8] * (FRAMES - 1)
    assert abs(float(noise.mean())) < 0.1 and abs(float(noise.std()) - 1) < 0.1


def test_shared_noise_for_a_whole_frame_is_one_draw_and_a_wrong_latent_is_refused(encoded):
    _, _, latent, frame, _ = encoded
    noise = ICEditVideoNoise.execute(frame, vn.SHARED, SEED, vn.LATENT_PIXEL).result[0].generate_noise(latent)
    assert all(torch.equal(noise[0], noise[t]) for t in range(FRAMES)) and few_ties(noise)
    wrong = {"samples": torch.zeros((FRAMES, 16, 8, 16))}  # a diptych's width
    with pytest.raises(ValueError, match=r"the latent is 16x8 .*whose latent is 8x8.*layout of the frames"):
        ICEditVideoNoise.execute(frame, vn.SHARED, SEED, vn.LATENT_PIXEL).result[0].generate_noise(wrong)


def test_qwen_latents_with_a_time_axis_get_the_same_noise_with_that_axis(frames):
    """Qwen-Image's latent has a time axis of one frame: [T, 16, 1, H, W]; the noise is the 4-D noise with it."""
    frame = editors.whole_image_frame(editors.QWEN_IMAGE_EDIT, frames, SIZE, SIZE)
    noise = ICEditVideoNoise.execute(frame, vn.FLOW, SEED, vn.LATENT_PIXEL).result[0]
    timed = noise.generate_noise({"samples": torch.zeros((FRAMES, 16, 1, 8, 8))})
    plain = noise.generate_noise({"samples": torch.zeros((FRAMES, 16, 8, 8))})
    assert tuple(timed.shape) == (FRAMES, 16, 1, 8, 8) and torch.equal(timed[:, :, 0], plain)


@pytest.mark.parametrize("frames_per_batch", [2, 4])
def test_each_kontext_chunk_is_the_stock_sampler_on_its_frames_alone(kontext, clip, vae, frames, encoded,
                                                                    frames_per_batch):
    """The chunked sampler against SamplerCustomAdvanced on the chunk's frames encoded alone: the reference
    latents are cut with the frames (uncut, ComfyUI would repeat the first chunk's references for every chunk)."""
    positive, _, latent, frame, _ = encoded
    noise = ICEditVideoNoise.execute(frame, vn.FLOW, SEED, vn.LATENT_PIXEL).result[0]
    sampler = KSamplerSelect.execute("euler").result[0]
    sigmas = BasicScheduler.execute(kontext, "simple", 2, 1.0).result[0]
    guider = BasicGuider.execute(kontext, positive).result[0]
    result = ICEditVideoSampler.execute(noise, guider, sampler, sigmas, latent, frames_per_batch).result[0]
    whole_noise = noise.generate_noise(latent)
    for start in range(0, FRAMES, frames_per_batch):
        stop = min(FRAMES, start + frames_per_batch)
        alone_positive, _, alone_latent, _, _ = ICEditKontextEncode.execute(clip, vae, frames[start:stop],
                                                                            "make it red", 2.5,
                                                                            kontext_size=False).result
        expected = SamplerCustomAdvanced.execute(FixedNoise(SEED, whole_noise[start:stop]),
                                                 BasicGuider.execute(kontext, alone_positive).result[0], sampler,
                                                 sigmas, alone_latent).result[0]["samples"]
        assert torch.equal(result["samples"][start:stop], expected), (start, stop)


def test_a_chunks_guider_holds_only_its_frames_reference_latents(kontext, encoded):
    positive = encoded[0]
    guider = BasicGuider.execute(kontext, positive).result[0]
    original = guider.original_conds["positive"][0]["reference_latents"]
    chunk = guider_for_frames(guider, 2, 4, FRAMES).original_conds["positive"][0]["reference_latents"]
    assert isinstance(chunk, list) and len(chunk) == len(original) == 1
    assert torch.equal(chunk[0], original[0][2:4]) and original[0].shape[0] == FRAMES  # the guider stays whole


def test_qwen_reference_latents_with_a_time_axis_are_cut_with_the_frames():
    """Qwen-Image-Edit's conditioning (TextEncodeQwenImageEditPlus) carries reference_latents of [T, 16, 1, h, w];
    a chunk gets its frames of each, in ComfyUI's CONDList too once converted; a one-frame reference is shared."""
    import comfy.conds

    from comfyui_icedit.nodes.video import slice_cond

    per_frame = torch.randn((FRAMES, 16, 1, 4, 4))
    shared = torch.randn((1, 16, 1, 4, 4))
    cond = {"reference_latents": [per_frame, shared],
            "model_conds": {"ref_latents": comfy.conds.CONDList([per_frame, shared])}}
    chunk = slice_cond(cond, 2, 5, FRAMES)
    assert torch.equal(chunk["reference_latents"][0], per_frame[2:5]) and chunk["reference_latents"][1] is shared
    converted = chunk["model_conds"]["ref_latents"]
    assert isinstance(converted, comfy.conds.CONDList)
    assert torch.equal(converted.cond[0], per_frame[2:5]) and converted.cond[1] is shared
    assert cond["reference_latents"][0] is per_frame  # the guider's own conditioning stays whole
