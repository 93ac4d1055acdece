"""The system tier: real ComfyUI servers, Ray and Chromium. ComfyUI is imported here too, for the fixtures that
build smoke-test models in-process."""
import os

from comfyui_icedit.devtools import bootstrap

# Inherited by every child: the runner, its ComfyUI servers, Ray's workers. By default an OpenMP thread spins for
# a while after each parallel region, holding its core; this tier runs several torch processes at once (a run's
# servers, the reference server, the runner) on few cores, and each one's spinning then starves the others. On the
# 2-core machine, two processes running the same small matmuls and convolutions side by side took 3.5-12 s each
# with the default and 1.5 s passive (70-96 s against 1.5-1.8 s while other work loaded the machine). A process
# alone on idle cores is faster spinning (the pack tier, in-process, keeps the default). It changes no result,
# only how idle threads wait.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

bootstrap.import_pack()
