"""ICEditMultiTurn: a list of instructions applied in turn, each turn editing the previous turn's result."""
from __future__ import annotations

import comfy.samplers
import torch
from comfy_api.latest import io

from ..icedit_core import diptych as dip
from ..icedit_core import early_filter as ef
from ..icedit_core import prompts
from . import edit_path
from .edit import shift_inputs, template_inputs
from .validation import ICEditNode


class ICEditMultiTurn(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditMultiTurn",
            display_name="ICEdit Multi-Turn Edit",
            category="ICEdit",
            description="Applies several instructions in sequence: each turn edits the previous turn's result, at "
                        "the source's size. Turn i samples with seed + i, so a run can be reproduced or a single "
                        "turn redone with a plain KSampler.",
            inputs=[
                io.Model.Input("model", tooltip="FLUX.1 Fill after the LoRA / MoE loader. The Flux shift for the "
                                                "diptych's size is applied here."),
                io.Clip.Input("clip", tooltip="The Flux text encoders."),
                io.Vae.Input("vae", tooltip="The Flux VAE."),
                io.Image.Input("image", tooltip="The source (one image)."),
                io.String.Input("instructions", multiline=True, default="",
                                placeholder="make the sky a sunset\nadd a red kite\nmake it a watercolor",
                                tooltip="One instruction per line; empty lines are skipped."),
                io.Int.Input("seed", default=42, min=0, max=0xffffffffffffffff, control_after_generate=True,
                             tooltip="Turn i (from 0) uses seed + i, wrapping past the largest seed to 0."),
                io.Int.Input("steps", default=28, min=1, max=200, tooltip="Steps per turn."),
                io.Int.Input("panel_width", default=dip.DEFAULT_PANEL_WIDTH, min=dip.PANEL_MULTIPLE, max=4096,
                             step=dip.PANEL_MULTIPLE, tooltip="ICEdit's panel width (512)."),
                io.Float.Input("guidance", default=50.0, min=0.0, max=100.0, step=0.1, tooltip="Flux guidance."),
                io.Combo.Input("sampler_name", options=comfy.samplers.SAMPLER_NAMES, default="euler",
                               tooltip="The sampler."),
                io.Combo.Input("scheduler", options=comfy.samplers.SCHEDULER_NAMES, default="simple",
                               tooltip="The sigma schedule."),
                # After the original inputs, so workflows saved before they existed still load.
                *template_inputs(),
                *shift_inputs(),
            ],
            outputs=[
                io.Image.Output("final", display_name="final", tooltip="The result of the last turn."),
                io.Image.Output("turns", display_name="turns",
                                tooltip="The source, then every turn's result, as one batch (all the source's size)."),
                io.String.Output("log", display_name="log",
                                 tooltip="Turn by turn: seed and instruction, and any note about a prompt cut short."),
            ],
        )

    @classmethod
    def execute(cls, model, clip, vae, image, instructions, seed, steps, panel_width, guidance, sampler_name,
                scheduler, template="released", custom_template="", max_shift=edit_path.DEFAULT_MAX_SHIFT,
                base_shift=edit_path.DEFAULT_BASE_SHIFT) -> io.NodeOutput:
        turns = prompts.split_instructions(instructions)
        if image.shape[0] != 1:
            raise ValueError(f"multi-turn editing takes one image; got a batch of {image.shape[0]}")
        settings = edit_path.EditSettings(
            steps=steps, panel_width=panel_width, guidance=guidance,
            template_text=prompts.resolve_template(template, custom_template), max_shift=max_shift,
            base_shift=base_shift, sampler_name=sampler_name, scheduler=scheduler)
        current = dip.to_rgb(image).float().cpu()
        results, log = [current], []
        seeds = ef.consecutive_seeds(seed, len(turns))
        for index, (instruction, turn_seed) in enumerate(zip(turns, seeds, strict=True)):
            result = edit_path.edit_once(model, clip, vae, current, instruction, turn_seed, settings)
            current = result.edited[:1]
            results.append(current)
            log.append(f"turn {index + 1}: seed {turn_seed}: {instruction}")
            if result.tokens.cut:
                log.append(f"  note: {result.tokens.text()}")
        return io.NodeOutput(current, torch.cat(results), "\n".join(log))

NODES = [ICEditMultiTurn]
