"""The benchmarks: `python -m comfyui_icedit.bench.<name>` (README, Benchmarks). Each writes what it measured, on
which machine, to bench/results/.

Those that run ComfyUI in this process import it as soon as this package is imported: ComfyUI's folder goes first
on sys.path (devtools/bootstrap.py) before any of them imports comfy."""
from ..devtools import bootstrap

bootstrap.import_pack()
