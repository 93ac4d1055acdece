"""The pack tier: the real ComfyUI imported in this process (tiny random-weight models, no server)."""
from comfyui_icedit.devtools import bootstrap

bootstrap.import_pack()
