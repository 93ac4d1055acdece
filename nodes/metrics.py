"""ICEditMetrics: the paper's edit metrics on images in a workflow."""
from __future__ import annotations

import json

from comfy_api.latest import io

from ..icedit_core import metrics
from .hf_folders import model_folder_path, model_folders, register_folder
from .validation import ICEditNode

METRICS_FOLDER = register_folder("metrics")  # models/metrics/<CLIP or DINO folder>
NONE = "none"


class ICEditMetrics(ICEditNode):
    @classmethod
    def define_schema(cls):
        folders = [NONE] + model_folders(METRICS_FOLDER)
        return io.Schema(
            node_id="ICEditMetrics",
            display_name="ICEdit Metrics",
            category="ICEdit",
            description="MagicBrush metrics against a target (L1, CLIP-I, DINO, CLIP-T) and Emu Edit metrics against "
                        "the source (CLIP-I, DINO, CLIP-Out), as far as the given images and models allow.",
            inputs=[
                io.Image.Input("output", tooltip="The edited image."),
                io.Image.Input("target", optional=True, tooltip="The ground-truth edit (MagicBrush)."),
                io.Image.Input("source", optional=True, tooltip="The original (Emu Edit protocol)."),
                io.Mask.Input("mask", optional=True,
                              tooltip="With source: the area the edit was meant for (e.g. ICEdit Text Mask's). "
                                      "Adds how much changed inside and outside it, so an edit that spilled "
                                      "shows."),
                io.String.Input("target_caption", default="", tooltip="Caption of the target, for CLIP-T."),
                io.String.Input("output_caption", default="", tooltip="Caption the output should match (CLIP-Out)."),
                io.Combo.Input("clip_model", options=folders, default=NONE,
                               tooltip="A CLIP folder under models/metrics (e.g. openai/clip-vit-large-patch14)."),
                io.Combo.Input("dino_model", options=folders, default=NONE,
                               tooltip="A DINO ViT folder under models/metrics (e.g. facebook/dino-vits16)."),
            ],
            outputs=[io.String.Output("scores", display_name="scores", tooltip="The scores as JSON.")],
        )

    @classmethod
    def execute(cls, output, target_caption, output_caption, clip_model, dino_model, target=None,
                source=None, mask=None) -> io.NodeOutput:
        clip = metrics.ClipScorer(model_folder_path(METRICS_FOLDER, clip_model)) if clip_model != NONE else None
        dino = metrics.DinoScorer(model_folder_path(METRICS_FOLDER, dino_model)) if dino_model != NONE else None
        scores = metrics.evaluate(output, source=source, target=target, target_caption=target_caption,
                                  output_caption=output_caption, clip=clip, dino=dino, mask=mask)
        return io.NodeOutput(json.dumps(scores, indent=1))


NODES = [ICEditMetrics]
