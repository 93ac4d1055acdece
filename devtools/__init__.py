"""Developer tools: the workflow builder, the smoke-test models and adapters, and the in-process ComfyUI bootstrap.

Not shipped to the Comfy Registry. Imported as `comfyui_icedit.devtools`."""
