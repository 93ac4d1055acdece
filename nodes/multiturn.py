"""ICEditMultiTurn: a list of instructions applied in turn, each turn editing the previous turn's result."""
from __future__ import annotations

import comfy.model_management
import comfy.samplers
import torch
from comfy_api.latest import io

from ..icedit_core import checked_turns as ct
from ..icedit_core import diptych as dip
from ..icedit_core import early_filter as ef
from ..icedit_core import editors
from ..icedit_core import prompts
from . import edit_path, sampler
from .edit import shift_inputs, template_inputs
from .io_types import Judge
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
                        "turn redone with a plain KSampler. With a judge connected, every turn is checked: a try "
                        "that scores below min_score is tried again with the next seed, and the best try is kept.",
            inputs=[
                io.Model.Input("model", tooltip="FLUX.1 Fill after the LoRA / MoE loader (FLUX.1 Kontext [dev] with "
                                                "editor flux_kontext). ICEdit: the Flux shift for the "
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
                Judge.Input("judge", optional=True,
                            tooltip="Optional: checks every turn. The judge scores each try against that turn's "
                                    "instruction (VIEScore SC: the edit done, and nothing more; 0 to 10)."),
                io.Float.Input("min_score", default=6.0, min=0.0, max=10.0, step=0.5,
                               tooltip="With a judge: a try scoring below this is tried again with the next seed."),
                io.Int.Input("tries", default=3, min=1, max=16,
                             tooltip="With a judge: at most this many tries per turn; the best one is kept. Turn i "
                                     "then uses seeds seed + i*tries, + 1, ... (with tries 1: seed + i)."),
                io.Int.Input("early_filter_candidates", default=1, min=1, max=16,
                             tooltip="With a judge: above 1, every try runs the Early Filter (resume, pairwise) "
                                     "over this many seeds instead of plain sampling; 1 = plain sampling."),
                io.Int.Input("early_steps", default=10, min=1, max=200,
                             tooltip="With the Early Filter: steps each candidate runs before the judge picks."),
                # Optional, so the multi-turn workflows saved before other editors existed load and run unchanged.
                io.Combo.Input("editor", options=list(editors.EDITORS), default=editors.ICEDIT, optional=True,
                               tooltip="Which model edits each turn. icedit: FLUX.1 Fill with the ICEdit LoRA, in a "
                                       "diptych (panel width, template and shift apply). flux_kontext: FLUX.1 "
                                       "Kontext [dev] on the whole image, as ICEdit Kontext Encode does (set "
                                       "guidance to 2.5; panel width, template and shift do not apply). "
                                       "qwen_image_edit: Qwen-Image-Edit-2509 as ICEdit Qwen-Image-Edit Encode "
                                       "does, at cfg 2.5 with the negative prompt below (the model through "
                                       "ModelSamplingAuraFlow)."),
                io.Boolean.Input("kontext_size", default=True, optional=True,
                                 tooltip="flux_kontext: scale each turn's source to Kontext's preferred size (about "
                                         "1 megapixel); off keeps its size, rounded to multiples of 16."),
                io.String.Input("negative_prompt", multiline=True, default="", optional=True,
                                tooltip="qwen_image_edit: the negative prompt of every turn (it samples at cfg "
                                        "2.5; the model should come through ModelSamplingAuraFlow)."),
                io.Float.Input("reference_megapixels", default=edit_path.QWEN_REFERENCE_MEGAPIXELS, min=0.01,
                               max=16.0, step=0.01, optional=True,
                               tooltip="qwen_image_edit: 1.0 is TextEncodeQwenImageEditPlus's own reference size."),
            ],
            outputs=[
                io.Image.Output("final", display_name="final", tooltip="The result of the last turn."),
                io.Image.Output("turns", display_name="turns",
                                tooltip="The source, then every turn's result, as one batch (all the source's size)."),
                io.String.Output("log", display_name="log",
                                 tooltip="Turn by turn: seed and instruction; with a judge every try with its seed, "
                                         "score and whether it was kept, and the model evaluations (NFE) in all."),
            ],
        )

    @classmethod
    def execute(cls, model, clip, vae, image, instructions, seed, steps, panel_width, guidance, sampler_name,
                scheduler, template="released", custom_template="", max_shift=edit_path.DEFAULT_MAX_SHIFT,
                base_shift=edit_path.DEFAULT_BASE_SHIFT, judge=None, min_score=6.0, tries=3,
                early_filter_candidates=1, early_steps=10, editor=editors.ICEDIT, kontext_size=True,
                negative_prompt="", reference_megapixels=edit_path.QWEN_REFERENCE_MEGAPIXELS) -> io.NodeOutput:
        turns = prompts.split_instructions(instructions)
        if image.shape[0] != 1:
            raise ValueError(f"multi-turn editing takes one image; got a batch of {image.shape[0]}")
        settings = edit_path.EditSettings(
            steps=steps, panel_width=panel_width, guidance=guidance,
            template_text=prompts.resolve_template(template, custom_template), max_shift=max_shift,
            base_shift=base_shift, sampler_name=sampler_name, scheduler=scheduler, editor=editor,
            kontext_size=kontext_size, negative_prompt=negative_prompt, reference_megapixels=reference_megapixels)
        tries_per_turn = tries if judge is not None else 1
        early_filter, seeds_per_try = None, 1
        if early_filter_candidates > 1:
            if judge is None:
                raise ValueError("early_filter_candidates above 1 runs the Early Filter, which needs a judge: "
                                 "connect one, or set it to 1")
            filter_settings = sampler.EarlyFilterSettings(early_filter_candidates, early_steps)
            filter_settings.check(model, sampler_name, steps)
            early_filter, seeds_per_try = (judge, filter_settings), early_filter_candidates
        if judge is not None:
            judge.check()  # a judge that cannot answer is found before the first turn is sampled
        current = dip.to_rgb(image).float().cpu()
        results, log, evaluations = [current], [], 0
        cfg = editors.editor(editor).cfg
        if editor == editors.FLUX_KONTEXT:
            log.append(f"editor: {editors.editor(editor).display}, guidance {guidance:g}")
        elif editor == editors.QWEN_IMAGE_EDIT:
            log.append(f"editor: {editors.editor(editor).display}, cfg {cfg:g}")
        for index, instruction in enumerate(turns):
            # Each try owns seeds_per_try consecutive seeds (its Early Filter candidates), a turn tries_per_turn tries.
            seeds = ef.consecutive_seeds(seed + index * tries_per_turn * seeds_per_try,
                                         tries_per_turn * seeds_per_try)[::seeds_per_try]
            notes = []

            def try_edit(try_seed, source=current, instruction=instruction, notes=notes):
                comfy.model_management.throw_exception_if_processing_interrupted()
                result = edit_path.edit_once(model, clip, vae, source, instruction, try_seed, settings, early_filter)
                if result.tokens.cut and not notes:
                    notes.append(f"  note: {result.tokens.text()}")
                if early_filter is not None:
                    last = ef.consecutive_seeds(try_seed, seeds_per_try)[-1]
                    notes.append(f"  try seed {try_seed}: Early Filter over seeds {try_seed}..{last} picked seed "
                                 f"{result.seed}")
                return result.edited[:1]

            def score(edited, source=current, instruction=instruction):
                if judge is None:  # unchecked: the single try (tries_per_turn is 1) is kept
                    return None
                comfy.model_management.throw_exception_if_processing_interrupted()
                return judge.score(source[0], edited[0], instruction)

            turn = ct.run_checked_turn(seeds, try_edit, score, min_score)
            if judge is None:
                log.append(f"turn {index + 1}: seed {seeds[0]}: {instruction}")
            else:
                log.append(f"turn {index + 1}: {instruction}")
                log += turn.report(index + 1, min_score)
            log += notes
            per_try = early_filter[1].nfe(steps, cfg) if early_filter else steps * ef.evaluations_per_step(cfg)
            evaluations += len(turn.tries) * per_try
            current = turn.result
            results.append(current)
        if judge is not None:
            filtering = f", Early Filter {early_filter_candidates} x {early_steps} steps per try" if early_filter else ""
            log.append(f"NFE {evaluations} ({judge.name} judge, min SC {min_score:g}, up to {tries} tries per turn"
                       f"{filtering})")
        return io.NodeOutput(current, torch.cat(results), "\n".join(log))


NODES = [ICEditMultiTurn]
