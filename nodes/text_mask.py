"""ICEditTextMask: a MASK from words (CLIPSeg), to aim a region edit at "the dog" without painting."""
from __future__ import annotations

import comfy.model_management
from comfy_api.latest import io, ui

from ..icedit_core import text_mask as tm
from .hf_folders import model_folder_path, model_folders, register_folder
from .validation import ICEditNode

CLIPSEG_FOLDER = register_folder("clipseg")  # models/clipseg/<a CLIPSeg folder, e.g. CIDAS/clipseg-rd64-refined>
_loaded: dict[str, tm.ClipSegMasker] = {}  # one model kept between runs (a few hundred MB)


def clipseg(folder: str) -> tm.ClipSegMasker:
    path = model_folder_path(CLIPSEG_FOLDER, folder)
    if path not in _loaded:
        _loaded.clear()
        _loaded[path] = tm.ClipSegMasker(path, device=comfy.model_management.get_torch_device())
    return _loaded[path]


class ICEditTextMask(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditTextMask",
            display_name="ICEdit Text Mask (CLIPSeg)",
            category="ICEdit/region",
            description="A mask from a phrase ('the dog', 'the sky'): CLIPSeg scores every pixel, the threshold "
                        "makes the mask. Feed it to ICEdit Region Crop to edit only that area.",
            inputs=[
                io.Image.Input("image", tooltip="The image to find the phrase in."),
                io.Combo.Input("model_folder", options=model_folders(CLIPSEG_FOLDER),
                               tooltip="A CLIPSeg folder under models/clipseg/ (config, weights and processor "
                                       "files), e.g. CIDAS/clipseg-rd64-refined."),
                io.String.Input("phrase", default="the sky",
                                tooltip="What to mask, in a few words. Several things: separate them with commas."),
                io.Float.Input("threshold", default=0.4, min=0.01, max=0.99, step=0.01,
                               tooltip="Pixels whose CLIPSeg probability is above this are in the mask. Lower it "
                                       "when the mask misses parts; raise it when it spills over."),
                io.Int.Input("grow", default=8, min=0, max=512,
                             tooltip="Grow the mask by this many pixels (CLIPSeg's map is coarse at the edges)."),
                io.Boolean.Input("fill_holes", default=True, tooltip="Fill holes inside the masked object."),
            ],
            outputs=[io.Mask.Output("mask", display_name="mask", tooltip="1 where the phrase is, at the image's size.")],
        )

    @classmethod
    def execute(cls, image, model_folder, phrase, threshold, grow, fill_holes) -> io.NodeOutput:
        phrases = tm.split_phrases(phrase)
        tm.check_threshold(threshold)
        comfy.model_management.throw_exception_if_processing_interrupted()
        probabilities = clipseg(model_folder).probabilities(image, phrases)
        mask = tm.mask_from_probabilities(probabilities, threshold, grow, fill_holes)
        tm.require_match(mask, probabilities, phrase, threshold)
        share = float(mask.mean())
        return io.NodeOutput(mask, ui=ui.PreviewText(f"{phrase!r}: {share * 100:.1f} % of the image masked"))


NODES = [ICEditTextMask]
