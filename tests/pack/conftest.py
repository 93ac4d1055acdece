"""The pack tier: the real ComfyUI imported in this process (tiny random-weight models, no server)."""
from icedit_testing import bootstrap

bootstrap.import_pack()
