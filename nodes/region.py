"""Region edits on large images: cut a window around a mask, edit it with the usual ICEdit path, stitch back."""
from __future__ import annotations

from comfy_api.latest import io, ui

from ..icedit_core import region as rg
from .io_types import Region
from .validation import ICEditNode

CATEGORY = "ICEdit/region"


class ICEditRegionCrop(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditRegionCrop",
            display_name="ICEdit Region Crop",
            category=CATEGORY,
            description="Cuts a context window around the mask out of a large image, to edit it at ICEdit's panel "
                        "width (feed it to ICEdit Diptych). ICEdit Region Stitch puts the edit back.",
            inputs=[
                io.Image.Input("image", tooltip="The full-resolution image (any size)."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Where to edit. None, or an empty mask (Load Image's when nothing is "
                                      "painted, whatever its size): the whole image is the window and the edit "
                                      "comes back at full resolution; the node says so."),
                io.Int.Input("padding", default=64, min=0, max=4096,
                             tooltip="Context in pixels kept around the (feathered) mask, so the edit fits in."),
                io.Int.Input("feather", default=16, min=0, max=512,
                             tooltip="Pixels over which the edit fades into the original beyond the mask."),
                # After the original inputs, so workflows saved before they existed still load.
                io.Int.Input("grow", default=0, min=0, max=1024,
                             tooltip="Grow the mask by this many pixels first (covers a loose mask's edges)."),
                io.Boolean.Input("fill_holes", default=False,
                                 tooltip="Fill holes in the mask first (a text mask often leaves gaps inside an "
                                         "object)."),
                io.Float.Input("context", default=0.0, min=0.0, max=4.0, step=0.05,
                               tooltip="More context that scales with the mask: this fraction of the mask's width "
                                       "is added left and right, of its height above and below, on top of "
                                       "padding. A small mask then still gets enough surroundings."),
            ],
            outputs=[
                io.Image.Output("window", display_name="window", tooltip="The cut-out to edit."),
                Region.Output("region", display_name="region", tooltip="Where it was cut; for Region Stitch."),
            ],
        )

    @classmethod
    def execute(cls, image, padding, feather, mask=None, grow=0, fill_holes=False, context=0.0) -> io.NodeOutput:
        window, region = rg.crop_region(image, mask, padding, feather, grow_pixels=grow, fill=fill_holes,
                                        context=context)
        return io.NodeOutput(window, region, ui=ui.PreviewText(region.describe()))


class ICEditRegionStitch(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditRegionStitch",
            display_name="ICEdit Region Stitch",
            category=CATEGORY,
            description="Blends the edited window back into the full-resolution image, its colours first fitted to "
                        "the original's around the mask. Outside the feathered mask every pixel is the original's, "
                        "bit for bit.",
            inputs=[
                io.Image.Input("edited", tooltip="The edited window (ICEdit Crop's edited output; any size)."),
                Region.Input("region", tooltip="From ICEdit Region Crop."),
                io.Combo.Input("color_match", options=list(rg.COLOR_MATCH_MODES), default=rg.COLOR_MATCH_MEAN_STD,
                               tooltip="Fit the edit's colours to the original's on a ring just outside the "
                                       "feathered mask before blending, so no tone seam shows. mean-std: shift and "
                                       "scale per channel; histogram: per-channel quantile mapping; off: as "
                                       "sampled. Turn off for edits meant to change the colours around the mask "
                                       "too (relighting)."),
            ],
            outputs=[io.Image.Output("image", display_name="image", tooltip="The full-resolution result.")],
        )

    @classmethod
    def execute(cls, edited, region, color_match=rg.COLOR_MATCH_MEAN_STD) -> io.NodeOutput:
        return io.NodeOutput(rg.stitch(edited, region, color_match))


NODES = [ICEditRegionCrop, ICEditRegionStitch]
