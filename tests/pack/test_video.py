"""The video nodes on ComfyUI's real classes: ICEdit Video Noise (independent / shared / flow noise for a clip's
diptych latents), ICEdit Video Sampler (SamplerCustomAdvanced a chunk of frames at a time) and ICEdit Video
Consistency (flicker).

The clip is a smooth texture translating right by a known 8 pixels per frame (tests/video_clips.py), written as
an h264 mp4 and decoded with ComfyUI's own VideoFromFile, as LoadVideo + GetVideoComponents would. Covered:
flow noise follows that known translation exactly (one latent pixel per frame, fresh noise where texture enters);
the particle carry on an exact synthetic flow (2x2 token patches move whole, sub-cell motion adds up); shared
noise, and flow noise on a still clip, are one draw for all frames; every mode's noise is standard normal per
frame; independent noise is ComfyUI's RandomNoise; chunked sampling with the tiny FLUX.1 Fill against the stock
SamplerCustomAdvanced; per-frame conditioning cut per chunk; the flicker number on clips whose answer is known;
and bad input (no frames, one frame, other sizes and counts, a latent of another layout, a variable frame rate).
"""
from __future__ import annotations

import re
import sys

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from icedit_testing import video_clips
from icedit_testing.sampling import FixedNoise
from comfy_api.latest._input_impl.video_types import VideoFromFile
from comfy_extras.nodes_custom_sampler import (BasicGuider, BasicScheduler, CFGGuider, KSamplerSelect,
                                               Noise_RandomNoise, SamplerCustomAdvanced)

from comfyui_icedit.icedit_core import flicker as flicker_metric
from comfyui_icedit.icedit_core import optical_flow
from comfyui_icedit.icedit_core import video_noise as vn
from comfyui_icedit.nodes import edit_path
from comfyui_icedit.nodes.edit import (ICEditDiptych, ICEditFillConditioning, ICEditModelSamplingFlux,
                                       ICEditPromptEncode)
from comfyui_icedit.nodes.video import (CARRY_START, CARRY_UI_KEY, ICEditVideoConsistency, ICEditVideoNoise,
                                        ICEditVideoSampler,
                                        guider_for_frames)

FRAMES, SIZE, STEP = 12, 64, 8  # the clip: 12 frames of 64x64, moving 8 px (one latent pixel) right per frame
PANEL = 64  # diptych panel width: the latent of one diptych is 8 rows x 16 columns, 8 per panel
LATENT_SHAPE = (FRAMES, 16, SIZE // 8, 2 * PANEL // 8)
SEED = 20240611


def ui_text(output) -> str:
    shown = output.ui if isinstance(output.ui, dict) else output.ui.as_dict()
    return shown["text"][0]


def zero_latent(shape=LATENT_SHAPE) -> dict:
    return {"samples": torch.zeros(shape)}


@pytest.fixture(scope="module")
def decoded_clip(tmp_path_factory) -> torch.Tensor:
    """The translating clip, written as mp4 and decoded as LoadVideo + GetVideoComponents would: [12, 64, 64, 3]."""
    frames = video_clips.translating_frames(frames=FRAMES, size=SIZE, step=STEP, seed=0)
    path = video_clips.write_clip(str(tmp_path_factory.mktemp("clip") / "translating.mp4"), frames, fps=12)
    components = VideoFromFile(path).get_components()
    images = components.images
    assert tuple(images.shape) == (FRAMES, SIZE, SIZE, 3)
    assert float((images - frames).abs().mean()) < 0.05  # it is the clip (h264 changes it a little)
    return images


@pytest.fixture(scope="module")
def clip_layout(decoded_clip):
    _, _, layout = ICEditDiptych.execute(decoded_clip, PANEL).result
    return layout


@pytest.fixture(scope="module")
def flow_output(clip_layout):
    """ICEdit Video Noise in flow mode on the decoded clip (the Farneback flows are measured once, here)."""
    return ICEditVideoNoise.execute(clip_layout, vn.FLOW, SEED, vn.LATENT_PIXEL)


@pytest.fixture(scope="module")
def flow_noise(flow_output) -> torch.Tensor:
    return flow_output.result[0].generate_noise(zero_latent())


# -- flow noise follows the motion ------------------------------------------------------------------------------
def test_flow_noise_moves_one_latent_pixel_per_frame_with_an_8_pixel_translation(flow_output, flow_noise):
    assert tuple(flow_noise.shape) == LATENT_SHAPE
    half = LATENT_SHAPE[3] // 2
    for t in range(FRAMES - 1):
        before, after = flow_noise[t], flow_noise[t + 1]
        for left in (0, half):  # the source panel and the panel to regenerate carry along the same flow
            # Everything that stays in view moved right by exactly one latent pixel (8 px / 8), values untouched.
            assert torch.equal(after[:, :, left + 1:left + half], before[:, :, left:left + half - 1]), (t, left)
            # The column entering at the left edge is disoccluded: fresh values, none of them seen in frame t.
            entering = after[:, :, left]
            assert not torch.equal(entering, before[:, :, left])
            assert not torch.isin(entering, before).any(), (t, left)
    assert not torch.equal(flow_noise[0], flow_noise[1])
    # One column of eight enters per frame: an eighth of the cells is fresh, and the node says so.
    assert flow_output.result[0].carried.fresh_fraction() == [1 / 8] * (FRAMES - 1)
    text = ui_text(flow_output)
    assert "fresh noise" in text and f"{FRAMES} frame(s)" in text
    assert int(re.search(r"on average (\d+) %", text).group(1)) in (12, 13)


def test_patch_grid_carry_moves_whole_token_blocks_on_an_exact_flow():
    rows = cols = 4  # a 4x4 grid of 2x2 token patches: an 8x8 latent panel
    frames = 5
    flows = np.zeros((frames - 1, rows, cols, 2))
    flows[..., 0] = 1.0  # every cell moves one cell right per frame
    carried = vn.carry_cells(flows, rows, cols)
    for t in range(frames - 1):
        assert np.array_equal(carried.particles[t + 1][:, 1:], carried.particles[t][:, :-1])
        assert (carried.particles[t + 1][:, 0] > carried.particles[t].max()).all()  # newborn at the left edge
    noise = vn.diptych_noise(vn.FLOW, frames, 16, 2 * rows, 2 * 2 * cols, SEED, carried=carried, cell=2)
    assert tuple(noise.shape) == (frames, 16, 8, 16)
    for t in range(frames - 1):
        for left in (0, 8):
            # Two latent pixels per frame: each 2x2 token block moves whole, none is split or mixed.
            assert torch.equal(noise[t + 1, :, :, left + 2:left + 8], noise[t, :, :, left:left + 6])
            assert not torch.isin(noise[t + 1, :, :, left:left + 2], noise[t]).any()


def test_sub_cell_motion_adds_up():
    """0.4 cells per frame: no single frame moves a particle half a cell, yet the kept sub-cell positions add up;
    a particle holds the cell its position rounds to (0.4 -> 0, 0.8 -> 1, 1.2 -> 1, 1.6 -> 2, 2.0 -> 2)."""
    rows = cols = 4
    flows = np.zeros((5, rows, cols, 2))
    flows[..., 0] = 0.4
    carried = vn.carry_cells(flows, rows, cols)
    noise = vn.diptych_noise(vn.FLOW, 6, 16, 2 * rows, 2 * 2 * cols, SEED, carried=carried, cell=2)
    for t, shift in ((1, 0), (2, 1), (3, 1), (4, 2), (5, 2)):
        assert np.array_equal(carried.particles[t][:, shift:], carried.particles[0][:, :cols - shift]), t
        for left in (0, 8):
            assert torch.equal(noise[t, :, :, left + 2 * shift:left + 8], noise[0, :, :, left:left + 8 - 2 * shift])


@pytest.mark.parametrize("moves, stays, loser", [((0.9, 0.3), 0, 1), ((0.7, 0.1), 1, 0)])
def test_where_two_particles_meet_the_one_nearer_the_centre_stays_and_the_other_takes_the_empty_cell(moves, stays,
                                                                                                    loser):
    flows = np.zeros((2, 1, 4, 2))
    flows[0, 0, 0, 0], flows[0, 0, 1, 0] = moves  # particles 0 and 1 both land in cell 1
    carried = vn.carry_cells(flows, 1, 4)
    # Cell 0 empties; the loser is not dropped but takes it (the nearest empty cell), so nobody is newborn.
    assert carried.particles[1].tolist() == [[loser, stays, 2, 3]]
    assert carried.particles[2].tolist() == [[loser, stays, 2, 3]]  # it keeps its true position: same again
    assert carried.count == 4


# -- shared, still ------------------------------------------------------------------------------------------------
def test_shared_noise_is_one_draw_for_every_frame(clip_layout):
    output = ICEditVideoNoise.execute(clip_layout, vn.SHARED, SEED, vn.LATENT_PIXEL)
    noise = output.result[0].generate_noise(zero_latent())
    assert tuple(noise.shape) == LATENT_SHAPE
    assert all(torch.equal(noise[t], noise[0]) for t in range(FRAMES))
    assert not torch.equal(noise[0, :, :, :PANEL // 8], noise[0, :, :, PANEL // 8:])  # the panels differ
    assert "shared" in ui_text(output)


def test_flow_noise_on_a_still_clip_is_exactly_the_shared_noise(decoded_clip):
    still = decoded_clip[:1].repeat(FRAMES, 1, 1, 1)
    _, _, layout = ICEditDiptych.execute(still, PANEL).result
    flow = ICEditVideoNoise.execute(layout, vn.FLOW, SEED, vn.LATENT_PIXEL)
    shared = ICEditVideoNoise.execute(layout, vn.SHARED, SEED, vn.LATENT_PIXEL).result[0]
    assert torch.equal(flow.result[0].generate_noise(zero_latent()), shared.generate_noise(zero_latent()))
    assert flow.result[0].carried.fresh_fraction() == [0.0] * (FRAMES - 1)
    # The same from an exact zero flow, without OpenCV.
    carried = vn.carry_cells(np.zeros((FRAMES - 1, 8, 8, 2)), 8, 8)
    assert np.array_equal(carried.particles, vn.still_cells(FRAMES, 8, 8).particles)
    assert torch.equal(vn.diptych_noise(vn.FLOW, FRAMES, 16, 8, 16, SEED, carried=carried),
                       vn.diptych_noise(vn.SHARED, FRAMES, 16, 8, 16, SEED))


# -- a clip in segments --------------------------------------------------------------------------------------------
SEGMENTS = ((0, 5), (5, 6), (6, FRAMES))  # one of them a single frame


def segment_noise(clip: torch.Tensor, mode: str, segments=SEGMENTS) -> tuple[list[torch.Tensor], list[str]]:
    """Each segment's noise, the node given the carry state the previous segment reported (the runner's way)."""
    pieces, carry, notes = [], CARRY_START, []
    for start, stop in segments:
        _, _, layout = ICEditDiptych.execute(clip[start:stop], PANEL).result
        output = ICEditVideoNoise.execute(layout, mode, SEED, vn.LATENT_PIXEL, carry)
        pieces.append(output.result[0].generate_noise(zero_latent((stop - start, *LATENT_SHAPE[1:]))))
        carry = output.ui[CARRY_UI_KEY][0]
        notes.append(ui_text(output))
    return pieces, notes


@pytest.mark.parametrize("mode", [vn.FLOW, vn.SHARED])
def test_a_clip_in_segments_gets_exactly_the_noise_of_one_clip(decoded_clip, flow_noise, clip_layout, mode):
    whole = flow_noise if mode == vn.FLOW else ICEditVideoNoise.execute(
        clip_layout, mode, SEED, vn.LATENT_PIXEL).result[0].generate_noise(zero_latent())
    pieces, notes = segment_noise(decoded_clip, mode)
    assert torch.equal(torch.cat(pieces), whole)
    assert "frames 6-6 of a clip in segments" in notes[1]


def test_independent_noise_in_segments_draws_each_segment_anew(decoded_clip):
    pieces, _ = segment_noise(decoded_clip, vn.INDEPENDENT, ((0, 4), (4, 8)))
    assert float((pieces[1] == pieces[0]).float().mean()) < 1e-3  # not the first segment's draw again


def test_a_whole_clip_reports_no_carry_state(flow_output):
    assert CARRY_UI_KEY not in flow_output.ui


def test_a_carry_state_of_another_layout_or_no_state_at_all_is_refused(decoded_clip):
    _, _, layout = ICEditDiptych.execute(decoded_clip[:3], PANEL).result
    carry = ICEditVideoNoise.execute(layout, vn.FLOW, SEED, vn.LATENT_PIXEL, CARRY_START).ui[CARRY_UI_KEY][0]
    _, _, wider = ICEditDiptych.execute(decoded_clip[3:5], 2 * PANEL).result
    with pytest.raises(ValueError, match="every segment of a clip must be laid out alike"):
        ICEditVideoNoise.execute(wider, vn.FLOW, SEED, vn.LATENT_PIXEL, carry)
    with pytest.raises(ValueError, match="not one ICEdit Video Noise reported"):
        ICEditVideoNoise.execute(layout, vn.FLOW, SEED, vn.LATENT_PIXEL, "frames 1-3")
    with pytest.raises(ValueError, match="the carry state is damaged"):
        ICEditVideoNoise.execute(layout, vn.FLOW, SEED, vn.LATENT_PIXEL, carry[:-40])


# -- every mode is standard normal --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", list(vn.MODES))
def test_each_frames_noise_is_standard_normal(clip_layout, flow_noise, mode):
    if mode == vn.FLOW:
        noise = flow_noise
    else:
        noise = ICEditVideoNoise.execute(clip_layout, mode, SEED, vn.LATENT_PIXEL).result[0].generate_noise(
            zero_latent())
    assert tuple(noise.shape) == LATENT_SHAPE and noise.dtype == torch.float32
    for t, frame in enumerate(noise):
        values = frame.flatten().double()
        n = values.numel()
        assert abs(float(values.mean())) < 5 / n ** 0.5, (mode, t)
        assert abs(float(values.std()) - 1) < 5 / (2 * n) ** 0.5, (mode, t)
        assert scipy.stats.kstest(values.numpy(), "norm").pvalue > 1e-4, (mode, t)
        if mode == vn.FLOW:  # each cell holds its own particle, both panels drawn apart: no value twice
            # (but by chance: 2048 float32 normals tie about once in 20 draws, so two ties are allowed)
            assert torch.unique(frame).numel() >= frame.numel() - 2, t


def test_independent_noise_is_comfyuis_random_noise(clip_layout):
    noise = ICEditVideoNoise.execute(clip_layout, vn.INDEPENDENT, SEED, vn.LATENT_PIXEL).result[0]
    assert noise.seed == SEED
    latent = zero_latent()
    assert torch.equal(noise.generate_noise(latent), Noise_RandomNoise(SEED).generate_noise(latent))
    indexed = {**zero_latent((3, *LATENT_SHAPE[1:])), "batch_index": [4, 0, 7]}  # a LatentFromBatch selection
    assert torch.equal(noise.generate_noise(indexed), Noise_RandomNoise(SEED).generate_noise(indexed))


# -- chunked sampling -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sampling(clip, vae, tiny_flux_fill):
    """Six 32x32 frames through Diptych, Prompt Encode, Fill Conditioning and the Flux shift, with the tiny FLUX.1
    Fill, euler and three steps; the noise is ICEdit Video Noise in flow mode."""
    frames = video_clips.translating_frames(frames=6, size=32, step=8, seed=1)
    diptych, mask, layout = ICEditDiptych.execute(frames, 32).result
    positive, negative, _, _ = ICEditPromptEncode.execute(clip, "make it red", "released", "", 50.0).result
    positive, negative, latent = ICEditFillConditioning.execute(positive, negative, vae, diptych, mask).result
    model = ICEditModelSamplingFlux.execute(tiny_flux_fill, layout, edit_path.DEFAULT_MAX_SHIFT,
                                            edit_path.DEFAULT_BASE_SHIFT).result[0]
    return {"frames": len(frames), "layout": layout, "model": model, "positive": positive, "negative": negative,
            "latent": latent, "sampler": KSamplerSelect.execute("euler").result[0],
            "sigmas": BasicScheduler.execute(model, "simple", 3, 1.0).result[0],
            "noise": ICEditVideoNoise.execute(layout, vn.FLOW, 7, vn.LATENT_PIXEL).result[0]}


def guider_of(s, kind: str):
    if kind == "basic":
        return BasicGuider.execute(s["model"], s["positive"]).result[0]
    return CFGGuider.execute(s["model"], s["positive"], s["negative"], 1.0).result[0]


def stock(s, guider, noise=None, latent=None) -> torch.Tensor:
    return SamplerCustomAdvanced.execute(noise or s["noise"], guider, s["sampler"], s["sigmas"],
                                         latent or s["latent"]).result[0]["samples"]


def chunked(s, guider, frames_per_batch: int) -> torch.Tensor:
    return ICEditVideoSampler.execute(s["noise"], guider, s["sampler"], s["sigmas"], s["latent"],
                                      frames_per_batch).result[0]["samples"]


def frames_of_conditioning(conditioning, start: int, stop: int, frames: int):
    """The Fill conditioning of frames start .. stop - 1, cut by hand: the two Fill channel tensors are per frame,
    everything else (prompt, pooled, guidance) is shared."""
    out = []
    for cond, options in conditioning:
        assert cond.shape[0] == 1 and options["pooled_output"].shape[0] == 1
        assert options["concat_latent_image"].shape[0] == frames and options["concat_mask"].shape[0] == frames
        out.append([cond, {**options, "concat_latent_image": options["concat_latent_image"][start:stop],
                           "concat_mask": options["concat_mask"][start:stop]}])
    return out


@pytest.mark.parametrize("kind", ["basic", "cfg"])
def test_one_chunk_is_the_stock_sampler_bit_for_bit(sampling, kind):
    guider = guider_of(sampling, kind)
    reference = stock(sampling, guider)
    assert tuple(reference.shape) == tuple(sampling["latent"]["samples"].shape)
    for frames_per_batch in (sampling["frames"], 100):
        assert torch.equal(chunked(sampling, guider, frames_per_batch), reference)


@pytest.mark.parametrize("kind, frames_per_batch", [("basic", 1), ("basic", 4), ("cfg", 4)])
def test_each_chunk_is_the_stock_sampler_on_its_frames_bit_for_bit(sampling, kind, frames_per_batch):
    """The chunks against SamplerCustomAdvanced run on the same frames alone (same batch size, so the same
    kernels): the whole clip's noise cut per chunk, the Fill channels cut per chunk, the prompt shared."""
    frames = sampling["frames"]
    result = chunked(sampling, guider_of(sampling, kind), frames_per_batch)
    whole_noise = sampling["noise"].generate_noise(sampling["latent"])
    for start in range(0, frames, frames_per_batch):
        stop = min(frames, start + frames_per_batch)
        part = {**sampling, "positive": frames_of_conditioning(sampling["positive"], start, stop, frames),
                "negative": frames_of_conditioning(sampling["negative"], start, stop, frames)}
        expected = stock(part, guider_of(part, kind), FixedNoise(7, whole_noise[start:stop]),
                         {"samples": sampling["latent"]["samples"][start:stop]})
        assert torch.equal(result[start:stop], expected), (start, stop)


@pytest.mark.parametrize("frames_per_batch", [1, 2, 4, 5])
def test_chunked_sampling_matches_one_batch(sampling, frames_per_batch):
    """Chunked = one batch up to float rounding. Not asserted bit for bit: CPU matrix products of [B, 128] give
    rows that depend on B (blocks of 4 rows, other kernels for the rest), so on this machine frames_per_batch 1,
    2, 3 and 5 differ from one batch of 6 by ~1e-5 while 4 happens to agree exactly."""
    guider = guider_of(sampling, "basic")
    reference = stock(sampling, guider)
    difference = float((chunked(sampling, guider, frames_per_batch) - reference).abs().max())
    assert difference < 1e-4
    other_seed = ICEditVideoNoise.execute(sampling["layout"], vn.FLOW, 8, vn.LATENT_PIXEL).result[0]
    assert float((stock(sampling, guider, other_seed) - reference).abs().max()) > 0.1  # the bound means something


def test_a_chunks_guider_holds_only_its_frames_conditioning(sampling):
    guider = guider_of(sampling, "basic")
    frames = sampling["frames"]
    original = guider.original_conds["positive"][0]
    chunk = guider_for_frames(guider, 2, 4, frames).original_conds["positive"][0]
    assert tuple(chunk["concat_latent_image"].shape) == (2, *original["concat_latent_image"].shape[1:])
    assert torch.equal(chunk["concat_latent_image"], original["concat_latent_image"][2:4])
    assert torch.equal(chunk["concat_mask"], original["concat_mask"][2:4])
    assert chunk["cross_attn"] is original["cross_attn"] and chunk["pooled_output"] is original["pooled_output"]
    assert original["concat_latent_image"].shape[0] == frames  # the guider itself is left whole
    assert torch.equal(original["concat_latent_image"], sampling["positive"][0][1]["concat_latent_image"])


# -- flicker ----------------------------------------------------------------------------------------------------
def test_a_chunk_gets_its_frames_controlnet_hints_through_the_whole_chain(smoke_models_dir, smoke_files, vae):
    """Per-frame ControlNet hints (a chain of two, as two Apply ControlNet nodes make) are cut to the chunk's
    frames on copies; a hint of one image is shared; the guider's own ControlNets keep every frame."""
    import comfy.controlnet
    import folder_paths

    from comfyui_icedit.nodes.video import slice_cond

    control = comfy.controlnet.load_controlnet(folder_paths.get_full_path("controlnet", smoke_files["controlnet"]))
    per_frame = torch.rand((6, 3, 32, 64))
    first = control.copy().set_cond_hint(per_frame, 0.7, (0.0, 0.5), vae)
    second = control.copy().set_cond_hint(per_frame[:1], 0.4, (0.0, 1.0), vae)
    second.set_previous_controlnet(first)
    chunk = slice_cond({"control": second, "concat_mask": torch.zeros(6, 1, 8, 8)}, 2, 4, 6)
    outer, inner = chunk["control"], chunk["control"].previous_controlnet
    assert outer is not second and inner is not first
    assert outer.cond_hint_original.shape[0] == 1  # one image for every frame: shared
    assert torch.equal(inner.cond_hint_original, per_frame[2:4])
    assert (inner.strength, inner.timestep_percent_range) == (0.7, (0.0, 0.5))
    assert chunk["concat_mask"].shape[0] == 2
    assert first.cond_hint_original.shape[0] == 6 and second.previous_controlnet is first


def test_a_clip_that_moves_exactly_with_the_source_does_not_flicker(decoded_clip):
    _, backward = optical_flow.clip_flows(decoded_clip)
    edited = [1.0 - decoded_clip[0]]  # any picture, carried along the source's motion
    for t in range(FRAMES - 1):
        edited.append(optical_flow.warp_back(edited[-1], backward[t])[0])
    flicker, source_flicker, ratio, report = ICEditVideoConsistency.execute(decoded_clip, torch.stack(edited)).result
    assert flicker < 1e-4 and source_flicker > 0 and ratio < 1e-4
    assert "resized" not in report


def test_a_recoloured_clip_flickers_as_much_as_its_source(decoded_clip):
    _, _, ratio, _ = ICEditVideoConsistency.execute(decoded_clip, 1.0 - decoded_clip).result
    assert 0.8 <= ratio <= 1.25


def test_per_frame_noise_flickers(decoded_clip):
    generator = torch.Generator().manual_seed(5)
    noisy = decoded_clip + (torch.rand(decoded_clip.shape, generator=generator) * 0.2 - 0.1)
    flicker, source_flicker, _, _ = ICEditVideoConsistency.execute(decoded_clip, noisy).result
    assert flicker > 5 * source_flicker > 0


def test_the_consistency_nodes_outputs(decoded_clip):
    output = ICEditVideoConsistency.execute(decoded_clip, 1.0 - decoded_clip)
    flicker, source_flicker, ratio, report = output.result
    assert all(isinstance(value, float) for value in (flicker, source_flicker, ratio))
    assert flicker > 0 and source_flicker > 0 and ratio == pytest.approx(flicker / source_flicker)
    assert isinstance(report, str) and ui_text(output) == report
    assert f"over {FRAMES} frames" in report and f"edited {flicker:.2f}" in report
    assert f"source {source_flicker:.2f}" in report and f"ratio {ratio:.2f}" in report


# -- bad input --------------------------------------------------------------------------------------------------
EMPTY = torch.zeros(0, 3, 0, 0)  # what GetVideoComponents gives for a video without frames


def test_an_empty_batch_is_a_clear_error(decoded_clip):
    with pytest.raises(ValueError, match=r"IMAGE batch is empty .*no image or video frame"):
        ICEditDiptych.execute(EMPTY, PANEL)
    with pytest.raises(ValueError, match="the source frames are empty .*no frames"):
        ICEditVideoConsistency.execute(EMPTY, EMPTY)
    with pytest.raises(ValueError, match="the edited frames are empty"):
        ICEditVideoConsistency.execute(decoded_clip, EMPTY)


def test_a_single_frame(decoded_clip):
    _, _, layout = ICEditDiptych.execute(decoded_clip[:1], PANEL).result
    output = ICEditVideoNoise.execute(layout, vn.FLOW, SEED, vn.LATENT_PIXEL)
    assert "nothing to carry" in ui_text(output)
    noise = output.result[0].generate_noise(zero_latent((1, *LATENT_SHAPE[1:])))
    assert tuple(noise.shape) == (1, *LATENT_SHAPE[1:])
    single = ICEditVideoConsistency.execute(decoded_clip[:1], decoded_clip[:1])  # not a failed run: a note
    assert single.result[:3] == (0.0, 0.0, 0.0) and "nothing to measure" in ui_text(single)
    with pytest.raises(ValueError, match="at least 2"):  # the measure itself needs two frames
        flicker_metric.flicker(decoded_clip[:1], decoded_clip[:1])


def test_edited_frames_of_another_size_are_resized(decoded_clip):
    smaller = F.interpolate(decoded_clip.movedim(-1, 1), size=(48, 48), mode="area").movedim(1, -1)
    output = ICEditVideoConsistency.execute(decoded_clip, smaller)
    assert "resized" in output.result[3] and "resized" in ui_text(output)


def test_different_frame_counts_are_an_error(decoded_clip):
    with pytest.raises(ValueError, match=rf"{FRAMES} frames .*edited clip {FRAMES - 1}"):
        ICEditVideoConsistency.execute(decoded_clip, decoded_clip[:FRAMES - 1])


@pytest.mark.parametrize("mode", [vn.SHARED, vn.FLOW])
def test_a_latent_of_another_layout_is_an_error(clip_layout, flow_output, mode):
    noise = flow_output.result[0] if mode == vn.FLOW else \
        ICEditVideoNoise.execute(clip_layout, mode, SEED, vn.LATENT_PIXEL).result[0]
    with pytest.raises(ValueError, match=re.escape(clip_layout.describe())):
        noise.generate_noise(zero_latent((FRAMES, 16, 8, 8)))
    with pytest.raises(ValueError, match=f"layout holds {FRAMES} frames"):
        noise.generate_noise(zero_latent((FRAMES - 2, *LATENT_SHAPE[1:])))


def test_a_variable_frame_rate_clip_decodes_every_frame_at_its_average_rate(tmp_path):
    """ComfyUI's VideoFromFile keeps every frame of a variable-frame-rate clip but only one frame_rate, the
    stream's average: the uneven timing itself is lost (CreateVideo writes the edit at that constant rate)."""
    frame_times = [0.05, 0.1, 0.05, 0.2, 0.05, 0.1, 0.05, 0.1, 0.05, 0.2, 0.05, 0.1]
    frames = video_clips.translating_frames(frames=FRAMES, size=32, step=4, seed=2)
    path = video_clips.write_clip(str(tmp_path / "vfr.mp4"), frames, fps=12, frame_times=frame_times)
    assert len(set(np.diff(video_clips.probe(path)["times"]).round(3))) > 1  # the file really is uneven
    components = VideoFromFile(path).get_components()
    assert components.images.shape[0] == FRAMES
    rate = float(components.frame_rate)
    assert min(1 / t for t in frame_times) <= rate <= max(1 / t for t in frame_times)


def test_without_opencv_flow_says_what_to_install_and_the_other_modes_still_work(clip_layout, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # what `import cv2` meets where OpenCV is not installed
    with pytest.raises(optical_flow.OpenCVMissing, match=r"pip install opencv-python-headless"):
        ICEditVideoNoise.execute(clip_layout, vn.FLOW, SEED, vn.LATENT_PIXEL)
    for mode in (vn.SHARED, vn.INDEPENDENT):
        noise = ICEditVideoNoise.execute(clip_layout, mode, SEED, vn.LATENT_PIXEL).result[0]
        assert noise.generate_noise(zero_latent())[0].shape == LATENT_SHAPE[1:]
