"""The pack's ComfyUI nodes (V3 schema): thin adapters over icedit_core."""
from typing_extensions import override

from comfy_api.latest import ComfyExtension, io

from . import (edit, editors, judge, metrics, moe, multiturn, planner, region, sampler, save_image, smoke_test,
               text_mask, video)


class ICEditExtension(ComfyExtension):
    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [*edit.NODES, *editors.NODES, *multiturn.NODES, *planner.NODES, *region.NODES, *text_mask.NODES,
                *moe.NODES, *sampler.NODES, *video.NODES, *judge.NODES, *metrics.NODES, *save_image.NODES,
                *smoke_test.registered_nodes()]


async def comfy_entrypoint() -> ICEditExtension:
    return ICEditExtension()
