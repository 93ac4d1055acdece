"""ICEdit for ComfyUI: instruction-based image editing with FLUX.1 Fill (In-Context Edit, arXiv 2504.20690).

ComfyUI imports this file and calls `comfy_entrypoint`. The node modules are imported only then, so that
`icedit_core` stays importable without a ComfyUI host.
"""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from .nodes import comfy_entrypoint as nodes_entrypoint

    return await nodes_entrypoint()
