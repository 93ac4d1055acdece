"""Editing a clip frame by frame: starting noise that follows the source's motion, a sampler that works through
the frames a chunk at a time, and a flicker number for the result.

Video comes in and goes out through ComfyUI's own nodes (LoadVideo → GetVideoComponents → frames, fps, audio;
CreateVideo → SaveVideo); the frames go through the ordinary ICEdit nodes as one IMAGE batch. ICEdit Video Noise
is a NOISE, so it plugs into the stock SamplerCustomAdvanced; ICEdit Video Sampler takes the same five inputs plus
`frames_per_batch`, for clips too long to sample in one batch.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import comfy.model_management
import comfy.sample
import comfy.utils
import latent_preview
import numpy as np
import torch
from comfy_api.latest import io, ui

from ..icedit_core import diptych as dip
from ..icedit_core import editors
from ..icedit_core import flicker as flicker_metric
from ..icedit_core import optical_flow
from ..icedit_core.segment_carry import CARRY_START, CARRY_UI_KEY
from ..icedit_core import video_noise as vn
from .io_types import Layout
from .validation import ICEditNode

CATEGORY = "ICEdit/video"
LATENT_SCALE = 8  # FLUX's VAE: one latent pixel is 8x8 image pixels
SEED_LIMIT = 2 ** 64


def check_frames(frames: torch.Tensor, what: str = "the frames") -> None:
    """A clear error for an IMAGE batch that holds no frames (a video with no video frames decodes to that)."""
    if frames.ndim != 4 or frames.shape[0] == 0 or 0 in frames.shape[1:3]:
        raise ValueError(f"{what} are empty (IMAGE shape {tuple(frames.shape)}): the video has no frames that "
                         "could be decoded")


@dataclass(frozen=True)
class NoisePanels:
    """What the noise needs of a clip's layout, for any editor: the size of the panel a latent shows (ICEdit: a
    diptych's half; FLUX.1 Kontext and Qwen-Image-Edit: the whole frame at the editor's working size), how many
    panels a latent holds side by side, and the frames the flow is measured on, at panel size."""

    panel_width: int
    panel_height: int
    panels: int
    batch_size: int
    description: str
    frame: editors.Frame

    @classmethod
    def of(cls, frame: editors.Frame) -> NoisePanels:
        if isinstance(frame, dip.DiptychLayout):
            return cls(frame.panel_width, frame.panel_height, 2, frame.batch_size, frame.describe(), frame)
        return cls(frame.working_width, frame.working_height, 1, frame.batch_size, frame.describe(), frame)

    @property
    def latent_size(self) -> tuple[int, int]:
        """(height, width) of one frame's latent, in latent pixels."""
        return self.panel_height // LATENT_SCALE, self.panels * self.panel_width // LATENT_SCALE

    def sources(self) -> torch.Tensor:
        """The frames as the latent's panel shows them: [T, h, w, 3] at panel size."""
        if isinstance(self.frame, dip.DiptychLayout):
            return dip.source_panels(self.frame)
        return dip.resize_images(self.frame.sources, self.panel_width, self.panel_height)


class VideoNoise:
    """A ComfyUI NOISE (what SamplerCustomAdvanced calls): `seed` and `generate_noise(latent)` for the whole
    clip's latents, one per frame (diptychs, or whole frames: `panels`). `frames_before`: the frames of earlier
    segments, for a clip edited in segments (independent noise draws each segment from its own seed)."""

    def __init__(self, mode: str, seed: int, panels: NoisePanels, carried: vn.CarriedCells | None, cell: int,
                 frames_before: int = 0):
        self.mode, self.seed, self.panels, self.carried, self.cell = mode, seed, panels, carried, cell
        self.frames_before = frames_before

    def _check(self, samples: torch.Tensor) -> None:
        frames, _, height, width = samples.shape
        expected = self.panels.latent_size
        what = "diptychs" if self.panels.panels == 2 else "frames"
        if (height, width) != expected:
            raise ValueError(f"the latent is {width}x{height} (latent pixels), but the noise's layout describes "
                             f"{self.panels.description}, whose latent is {expected[1]}x{expected[0]}. Give ICEdit "
                             f"Video Noise the layout of the {what} this latent was encoded from.")
        if frames != self.panels.batch_size:
            raise ValueError(f"the latent holds {frames} {what}, but the noise's layout holds "
                             f"{self.panels.batch_size} frames; both must come from the same source frames")

    def generate_noise(self, input_latent: dict) -> torch.Tensor:
        samples = input_latent["samples"]
        if self.mode == vn.INDEPENDENT:  # exactly what KSampler and RandomNoise draw for this batch
            seed = (self.seed + self.frames_before) % SEED_LIMIT  # a later segment: its own draw, not the first's
            return comfy.sample.prepare_noise(samples, seed, input_latent.get("batch_index"))
        # Qwen-Image's latents have a time axis of one frame ([T, C, 1, H, W]): the noise is made without it.
        timed = samples.ndim == 5 and samples.shape[2] == 1
        plain = samples[:, :, 0] if timed else samples
        if plain.ndim != 4:
            raise ValueError(f"the latent has shape {tuple(samples.shape)}; ICEdit Video Noise takes one image "
                             "latent per frame ([frames, channels, height, width])")
        self._check(plain)
        frames, channels, height, width = plain.shape
        noise = vn.latent_noise(self.mode, frames, channels, height, width, self.seed, carried=self.carried,
                                cell=self.cell, panels=self.panels.panels)
        return (noise.unsqueeze(2) if timed else noise).to(dtype=samples.dtype)


def _carry_grid(panels: NoisePanels, cell: int) -> tuple[int, int]:
    block = LATENT_SCALE * cell
    if panels.panel_height % block or panels.panel_width % block:
        raise ValueError(f"the panels are {panels.panel_width}x{panels.panel_height}; carrying noise on "
                         f"{cell}x{cell} latent cells needs multiples of {block} pixels")
    return panels.panel_height // block, panels.panel_width // block


def carry_along_source(panels: NoisePanels, cell: int, start: vn.CarryState | None = None,
                       frames_before: int = 0) -> tuple[vn.CarriedCells, vn.CarryState]:
    """Noise particles carried along the source frames' Farneback flow, at the panel's latent cell grid (continuing
    from `start`, the state the previous segment ended in), and the state after the last frame."""
    rows, cols = _carry_grid(panels, cell)
    block = LATENT_SCALE * cell
    planes = optical_flow.frame_planes(panels.sources())  # the frames as the latent's panel shows them
    if start is not None:
        start.check_continues(rows, cols, cell, planes.shape[1:])
        planes_in = np.concatenate([start.last_planes[None], planes])
    else:
        planes_in = planes
    if len(planes_in) == 1:
        carried = vn.still_cells(1, rows, cols)
    else:
        flows = optical_flow.flows_from_planes(planes_in)
        carried = vn.carry_cells(np.stack([optical_flow.block_mean(flow, block) for flow in flows]), rows, cols,
                                 start=start)
    return carried, carried.state(frames_before, cell, planes[-1])


def _read_carry(carry_in: str) -> tuple[vn.CarryState | None, bool]:
    """carry_in -> (the state to continue from, whether to report the state after this segment)."""
    text = (carry_in or "").strip()
    if not text:
        return None, False
    if text == CARRY_START:
        return None, True
    return vn.CarryState.from_text(text), True




class ICEditVideoNoise(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditVideoNoise",
            display_name="ICEdit Video Noise",
            category=CATEGORY,
            description="The starting noise for every frame's latent (an ICEdit diptych, or a whole frame for "
                        "FLUX.1 Kontext and Qwen-Image-Edit), as a NOISE for SamplerCustomAdvanced or "
                        "ICEdit Video Sampler. flow: frame 0's noise moves with the source's optical flow "
                        "(OpenCV Farneback), so a point of the scene keeps its noise while it is visible and "
                        "newly revealed areas get fresh noise; this cuts flicker. Every frame's noise stays "
                        "standard normal.",
            inputs=[
                Layout.Input("layout", tooltip="From the node that laid out the clip's frames: ICEdit Diptych, or "
                                               "ICEdit Kontext Encode / ICEdit Qwen-Image-Edit Encode (the frames "
                                               "the flow is measured on, at the size the latent shows them)."),
                io.Combo.Input("mode", options=list(vn.MODES), default=vn.FLOW,
                               tooltip="independent: a new draw per frame (what KSampler does; flickers most). "
                                       "shared: one draw for all frames (steady where nothing moves, but the "
                                       "noise stays put while the scene moves under it). flow: the noise moves "
                                       "with the scene (needs opencv-python-headless)."),
                io.Int.Input("noise_seed", default=42, min=0, max=SEED_LIMIT - 1, control_after_generate=True,
                             tooltip="The seed of the whole clip's noise."),
                io.Combo.Input("carry", options=list(vn.CARRY_GRIDS), default=vn.LATENT_PIXEL,
                               tooltip="flow mode: move noise per latent pixel (8x8 image pixels, follows motion "
                                       "most closely) or per Flux token patch (2x2 latent pixels, 16x16 image "
                                       "pixels, each token's noise kept whole)."),
                io.String.Input("carry_in", default="", optional=True,
                                tooltip="Leave empty for a whole clip. For a long clip edited in segments (the "
                                        "runner's --video does this): 'start' on the first segment, then the state "
                                        "the previous segment's noise reported, so the noise goes on across "
                                        "segments exactly as in one clip."),
            ],
            outputs=[io.Noise.Output(tooltip="Noise for the clip's latents, one per frame.")],
        )

    @classmethod
    def execute(cls, layout, mode, noise_seed, carry, carry_in="") -> io.NodeOutput:
        panels = NoisePanels.of(layout)
        cell = vn.CARRY_GRIDS[carry]
        start, report_carry = _read_carry(carry_in)
        frames_before = start.frames if start else 0
        segment = (f" (frames {frames_before + 1}-{frames_before + panels.batch_size} of a clip in segments)"
                   if report_carry else "")
        if mode != vn.FLOW:
            rows, cols = _carry_grid(panels, cell)
            if start is not None:
                start.check_continues(rows, cols, cell, (3, panels.panel_height, panels.panel_width))
            noise = VideoNoise(mode, noise_seed, panels, None, cell, frames_before)
            state = vn.still_cells(panels.batch_size, rows, cols).state(
                frames_before, cell, np.zeros((3, panels.panel_height, panels.panel_width), dtype=np.uint8))
            note = f"{mode} noise for {panels.batch_size} frame(s){segment}."
        else:
            carried, state = carry_along_source(panels, cell, start, frames_before)
            fresh = carried.fresh_fraction()
            note = (f"flow noise for {panels.batch_size} frame(s){segment}, carried on {carry}: on average "
                    f"{np.mean(fresh) * 100:.0f} % of each frame's cells got fresh noise (revealed or entering), "
                    f"at most {max(fresh) * 100:.0f} %." if fresh else
                    f"flow noise for a single frame{segment}: nothing to carry.")
            noise = VideoNoise(mode, noise_seed, panels, carried, cell, frames_before)
        ui_out = ui.PreviewText(note).as_dict()
        if report_carry:
            ui_out[CARRY_UI_KEY] = [state.to_text()]
        return io.NodeOutput(noise, ui=ui_out)




# -- chunked sampling -------------------------------------------------------------------------------------------
def _slice_control(control, start: int, stop: int, frames: int):
    """A copy of a ControlNet chain whose per-frame hint images are cut to the chunk's frames."""
    if control is None:
        return None
    chunk = control.copy()
    hint = getattr(control, "cond_hint_original", None)
    if isinstance(hint, torch.Tensor) and hint.shape[0] == frames:
        chunk.cond_hint_original = hint[start:stop]
    chunk.set_previous_controlnet(_slice_control(control.previous_controlnet, start, stop, frames))
    return chunk


def _slice_value(value, start: int, stop: int, frames: int, where: str):
    if isinstance(value, torch.Tensor):
        return value[start:stop] if _per_frame(value, frames) else value
    if hasattr(value, "cond") and hasattr(value, "_copy_with"):  # comfy.conds.CONDRegular and kin
        inner = value.cond
        if _per_frame(inner, frames):
            return value._copy_with(inner[start:stop])
        if isinstance(inner, list) and any(_per_frame(item, frames) for item in inner):  # CONDList
            return value._copy_with([_slice_value(item, start, stop, frames, where) for item in inner])
        return value
    if isinstance(value, dict):
        return {key: _slice_value(item, start, stop, frames, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)) and any(_per_frame(item, frames) for item in value):
        # FLUX.1 Kontext's and Qwen-Image-Edit's reference_latents: a list of latents, each a batch of the frames
        return type(value)(_slice_value(item, start, stop, frames, where) for item in value)
    return value


def _per_frame(value, frames: int) -> bool:
    return isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == frames


def slice_cond(cond: dict, start: int, stop: int, frames: int) -> dict:
    """One converted conditioning entry (what a guider holds) for frames start .. stop - 1: every tensor with one
    entry per frame (the Fill channels, per-frame prompts, ControlNet hints) cut to the chunk; the rest shared."""
    sliced = {}
    for key, value in cond.items():
        if key == "control":
            sliced[key] = _slice_control(value, start, stop, frames)
        else:
            sliced[key] = _slice_value(value, start, stop, frames, key)
    return sliced


def guider_for_frames(guider, start: int, stop: int, frames: int):
    """A shallow copy of a guider (CFGGuider, BasicGuider, ...) whose conditioning covers only these frames."""
    conds = getattr(guider, "original_conds", None)
    if conds is None:
        raise ValueError(f"the guider ({type(guider).__name__}) keeps no conditioning this sampler can split; "
                         "use a stock guider (CFGGuider, BasicGuider) or frames_per_batch >= the frame count")
    chunk = copy.copy(guider)
    chunk.original_conds = {name: [slice_cond(c, start, stop, frames) for c in entries]
                            for name, entries in conds.items()}
    return chunk


def sample_in_chunks(noise, guider, sampler, sigmas, latent: dict, frames_per_batch: int) -> dict:
    """What SamplerCustomAdvanced does, `frames_per_batch` latents at a time. The noise is drawn once for the
    whole clip and cut per chunk, and the per-frame conditioning with it, so each chunk is exactly what
    SamplerCustomAdvanced gives for those frames alone (with a sampler that draws no noise while stepping:
    euler, ICEdit's default). Against one batch of every frame it agrees to float rounding, not bit for bit:
    torch's matrix kernels round a row differently depending on how many rows the batch has."""
    samples = comfy.sample.fix_empty_latent_channels(guider.model_patcher, latent["samples"])
    latent = {**latent, "samples": samples}
    frames = int(samples.shape[0])
    full_noise = noise.generate_noise(latent)
    noise_mask = latent.get("noise_mask")
    steps = int(sigmas.shape[-1]) - 1
    chunks = [(start, min(frames, start + frames_per_batch)) for start in range(0, frames, frames_per_batch)]
    bar = comfy.utils.ProgressBar(steps * len(chunks))
    previewer = latent_preview.get_previewer(guider.model_patcher.load_device,
                                             guider.model_patcher.model.latent_format)
    done = []
    for index, (start, stop) in enumerate(chunks):
        comfy.model_management.throw_exception_if_processing_interrupted()

        def on_step(step, x0, x, total_steps, offset=index * steps):
            preview = previewer.decode_latent_to_preview_image("JPEG", x0) if previewer else None
            bar.update_absolute(offset + step + 1, steps * len(chunks), preview)

        out = guider_for_frames(guider, start, stop, frames).sample(
            full_noise[start:stop], samples[start:stop], sampler, sigmas,
            denoise_mask=_slice_value(noise_mask, start, stop, frames, "noise_mask"), callback=on_step,
            disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=noise.seed)
        done.append(out.to(comfy.model_management.intermediate_device()))
        if len(chunks) > 1:
            logging.info("ICEdit Video Sampler: frames %d-%d of %d done", start + 1, stop, frames)
    return {**latent, "samples": torch.cat(done)}


class ICEditVideoSampler(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditVideoSampler",
            display_name="ICEdit Video Sampler (chunked)",
            category=CATEGORY,
            description="SamplerCustomAdvanced for a clip: samples the frames' latents frames_per_batch "
                        "at a time, so a long clip never needs all its frames on the GPU at once. The noise is "
                        "drawn for the whole clip first and cut per chunk, so with euler every chunk is exactly "
                        "what SamplerCustomAdvanced gives for its frames, and the clip agrees with one big batch "
                        "to float rounding.",
            inputs=[
                io.Noise.Input("noise", tooltip="ICEdit Video Noise (or any NOISE, e.g. RandomNoise)."),
                io.Guider.Input("guider", tooltip="E.g. BasicGuider with the Fill conditioning (ICEdit samples at "
                                                  "cfg 1)."),
                io.Sampler.Input("sampler", tooltip="E.g. KSamplerSelect euler. Samplers that draw noise at every "
                                                    "step (ancestral, SDE) draw it per chunk, so their result "
                                                    "depends on frames_per_batch."),
                io.Sigmas.Input("sigmas", tooltip="E.g. BasicScheduler with the shifted model, 28 steps."),
                io.Latent.Input("latent_image", tooltip="The frames' latents (ICEdit Fill Conditioning's diptychs, or "
                                                          "the Kontext / Qwen-Image-Edit encode's latent)."),
                io.Int.Input("frames_per_batch", default=4, min=1, max=4096,
                             tooltip="Diptychs sampled together: GPU memory grows with it, so lower it when "
                                     "memory runs out. The result does not depend on it beyond float rounding "
                                     "(with euler)."),
            ],
            outputs=[io.Latent.Output("output", display_name="output", tooltip="The sampled latents, every frame.")],
        )

    @classmethod
    def execute(cls, noise, guider, sampler, sigmas, latent_image, frames_per_batch) -> io.NodeOutput:
        return io.NodeOutput(sample_in_chunks(noise, guider, sampler, sigmas, latent_image, frames_per_batch))


# -- flicker ----------------------------------------------------------------------------------------------------
class ICEditVideoConsistency(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditVideoConsistency",
            display_name="ICEdit Video Consistency (flicker)",
            category=CATEGORY,
            description="How much an edited clip flickers: each edited frame against the previous edited frame "
                        "moved along the source's optical flow, on the pixels where the source's own flow is "
                        "consistent; mean absolute difference in 8-bit levels, beside the same number for the "
                        "source. A ratio near 1: as steady as the input. Needs opencv-python-headless.",
            inputs=[
                io.Image.Input("source", tooltip="The source clip's frames (GetVideoComponents)."),
                io.Image.Input("edited", tooltip="The edited frames, the same count; another size is resized to "
                                                 "the source's first. A one-frame clip gives 0 and says so."),
            ],
            outputs=[
                io.Float.Output("flicker", display_name="flicker", tooltip="The edited clip's number (0 = none)."),
                io.Float.Output("source_flicker", display_name="source_flicker",
                                tooltip="The source clip's own number (flow errors, lighting, compression)."),
                io.Float.Output("ratio", display_name="ratio",
                                tooltip="flicker / source_flicker (0 when the source is perfectly steady)."),
                io.String.Output("report", display_name="report", tooltip="The numbers in words."),
            ],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, source, edited) -> io.NodeOutput:
        check_frames(source, "the source frames")
        check_frames(edited, "the edited frames")
        if source.shape[0] == 1 and edited.shape[0] == 1:  # a one-frame clip is a valid edit: report, don't fail it
            text = "A single frame: flicker compares consecutive frames, so there is nothing to measure."
            return io.NodeOutput(0.0, 0.0, 0.0, text, ui=ui.PreviewText(text))
        report = flicker_metric.flicker(source, edited)
        text = report.text()
        return io.NodeOutput(report.edited, report.source, report.ratio or 0.0, text, ui=ui.PreviewText(text))


NODES = [ICEditVideoNoise, ICEditVideoSampler, ICEditVideoConsistency]
