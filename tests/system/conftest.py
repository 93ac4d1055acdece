"""The system tier: real ComfyUI servers, Ray and Chromium. ComfyUI is imported here too, for the fixtures that
build smoke-test models in-process."""
from comfyui_icedit.devtools import bootstrap

bootstrap.import_pack()
