"""Region edits on large images: cut a window around a mask, edit it with the usual ICEdit path, stitch back."""
from __future__ import annotations

from comfy_api.latest import io

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
                              tooltip="Where to edit. None: the whole image is the window (the edit then comes "
                                      "back at full resolution). An empty mask changes nothing."),
                io.Int.Input("padding", default=64, min=0, max=4096,
                             tooltip="Context in pixels kept around the (feathered) mask, so the edit fits in."),
                io.Int.Input("feather", default=16, min=0, max=512,
                             tooltip="Pixels over which the edit fades into the original beyond the mask."),
            ],
            outputs=[
                io.Image.Output("window", display_name="window", tooltip="The cut-out to edit."),
                Region.Output("region", display_name="region", tooltip="Where it was cut; for Region Stitch."),
            ],
        )

    @classmethod
    def execute(cls, image, padding, feather, mask=None) -> io.NodeOutput:
        window, region = rg.crop_region(image, mask, padding, feather)
        return io.NodeOutput(window, region)


class ICEditRegionStitch(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditRegionStitch",
            display_name="ICEdit Region Stitch",
            category=CATEGORY,
            description="Blends the edited window back into the full-resolution image. Outside the feathered mask "
                        "every pixel is the original's, bit for bit.",
            inputs=[
                io.Image.Input("edited", tooltip="The edited window (ICEdit Crop's edited output; any size)."),
                Region.Input("region", tooltip="From ICEdit Region Crop."),
            ],
            outputs=[io.Image.Output("image", display_name="image", tooltip="The full-resolution result.")],
        )

    @classmethod
    def execute(cls, edited, region) -> io.NodeOutput:
        return io.NodeOutput(rg.stitch(edited, region))


NODES = [ICEditRegionCrop, ICEditRegionStitch]
