"""ICEditPlanInstructions: a compound edit request as single edits, one per line, for ICEdit Multi-Turn Edit."""
from __future__ import annotations

import comfy.model_management
from comfy_api.latest import io, ui

from ..icedit_core import planner
from ..icedit_core.images import to_pil
from .io_types import Judge
from .validation import ICEditNode

METHODS = ["rules", "judge"]


class ICEditPlanInstructions(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditPlanInstructions",
            display_name="ICEdit Plan Instructions",
            category="ICEdit",
            description="Splits a compound edit request ('make the sky red and add a kite') into single edits, one "
                        "per line, for ICEdit Multi-Turn Edit's instructions. By offline rules, or by asking the "
                        "connected judge's vision-language model.",
            inputs=[
                io.String.Input("instruction", multiline=True, default="",
                                placeholder="make the sky a sunset and add a red kite, then make it a watercolor",
                                tooltip="The compound edit request, as you would say it."),
                io.Combo.Input("method", options=METHODS, default="rules",
                               tooltip="rules: offline splitting at sentence ends, ';', 'then', and at 'and' or "
                                       "commas between two clauses that start with an edit verb. judge: ask the "
                                       "connected judge's model (Local VLM or OpenAI-compatible API); an answer "
                                       "with no readable list falls back to the rules."),
                Judge.Input("judge", optional=True,
                            tooltip="For method judge: a judge with a model to ask (Local VLM or "
                                    "OpenAI-compatible API). The heuristic judge has none."),
                io.Image.Input("image", optional=True,
                               tooltip="For method judge: the source, shown to the planner model with the request "
                                       "(the first image of a batch). Not used by the rules."),
            ],
            outputs=[
                io.String.Output("plan", display_name="plan",
                                 tooltip="One instruction per line, in order: for ICEdit Multi-Turn Edit's "
                                         "instructions."),
                io.Int.Output("steps", display_name="steps", tooltip="How many single edits the plan has."),
                io.String.Output("note", display_name="note",
                                 tooltip="How the plan was made (rules or model), and any fallback to the rules."),
            ],
            # Runs (and shows its plan) even with nothing linked, so a plan can be checked before editing.
            is_output_node=True,
        )

    @classmethod
    def execute(cls, instruction, method, judge=None, image=None) -> io.NodeOutput:
        if method not in METHODS:
            raise ValueError(f"method = {method!r}; choose one of {METHODS}")
        planner.require_text(instruction)  # before a judge is contacted
        if method == "rules":
            result = planner.plan(instruction)
        else:
            result = cls._ask_judge(instruction, judge, image)
        text = result.as_text()
        return io.NodeOutput(text, len(result.steps), result.note, ui=ui.PreviewText(f"{text}\n\n({result.note})"))

    @staticmethod
    def _ask_judge(instruction, judge, image) -> planner.Plan:
        if judge is None:
            raise ValueError("method 'judge' needs a judge: connect ICEdit Judge: Local VLM or ICEdit Judge: "
                             "OpenAI-compatible API, or choose method 'rules'")
        if not callable(getattr(judge, "ask", None)):
            raise ValueError(f"the {getattr(judge, 'name', type(judge).__name__)} judge has no model to ask, so it "
                             "cannot plan: connect ICEdit Judge: Local VLM or ICEdit Judge: OpenAI-compatible API, "
                             "or choose method 'rules'")
        judge.check()
        images = [to_pil(image[0])] if image is not None else []
        comfy.model_management.throw_exception_if_processing_interrupted()
        result = planner.plan(instruction, ask=lambda prompt: judge.ask(images, prompt), with_image=bool(images))
        if images and result.method == "model":
            result.note += " (the model saw the source image)"
        return result


NODES = [ICEditPlanInstructions]
