"""ICEdit Save Image's memory on a 6000x4500 image, measured in a fresh process (ComfyUI imported in-process, no
server): its peak above what was resident once the image was made."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from comfyui_icedit.devtools.allocator import STEADY_ALLOCATOR

MEMORY_PROBE = r"""
import json, os, sys, tempfile
import torch
from comfyui_icedit.devtools import bootstrap

bootstrap.import_pack()
import folder_paths
from comfy_api.latest import io
from comfyui_icedit.nodes.save_image import ICEditSaveImage

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

height, width = int(sys.argv[1]), int(sys.argv[2])
folder_paths.set_output_directory(tempfile.mkdtemp(prefix="icedit-save-memory-"))
# Smooth gradients with a fine ripple, a little past 0..1 at the edges (the clip has work to do); no random grain,
# which would make the PNG encoder, not the conversion, most of the test's time.
ys = torch.linspace(-0.05, 1.05, height).view(height, 1, 1)
xs = torch.linspace(0.0, 1.0, width).view(1, width, 1)
channels = torch.tensor([1.0, 0.8, 0.6]).view(1, 1, 3)
image = (0.6 * ys + 0.4 * xs) * channels + 0.01 * torch.sin(xs * 3000.0)
image = image.unsqueeze(0).contiguous()
del ys, xs
prompt = {"1": {"class_type": "ICEditSaveImage", "inputs": {"filename_prefix": "big"}}}
node = ICEditSaveImage.PREPARE_CLASS_CLONE({io.Hidden.prompt: prompt, io.Hidden.extra_pnginfo: {"workflow": {}}})
start = rss("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current size
output = node.execute(image, "big")
saved = os.path.join(folder_paths.get_output_directory(), output.ui.as_dict()["images"][0]["filename"])
print(json.dumps({"peak": rss("VmHWM:") - start, "file_bytes": os.path.getsize(saved)}))
"""

MIB = 1024 ** 2

# 6000x4500 RGB: the float32 image is 309 MiB; PIL's RGB image 103 MiB (4 bytes a pixel); one band of rows 32 MiB
# of float (BAND_BYTES) and its clipped copy as much again, its uint8 and PIL bands 8 and 10 MiB: about 185 MiB.
# 3 fresh processes on a loaded 2-core machine measured peak +178.6, +178.6 and +178.5 MiB (ComfyUI's SaveImage in
# the same probe: +695.6 MiB, its two full-size float copies and the uint8 array alive together). The bound leaves
# 71 MiB of margin: one full-size float copy (+309 MiB), or a full-size uint8 array beside PIL's image (+77 MiB),
# fails it.
BOUND_MIB = 250


def test_saving_a_6000x4500_image_costs_the_pil_image_and_a_band_not_a_float_copy(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(MEMORY_PROBE)
    result = subprocess.run([sys.executable, str(probe), "4500", "6000"], capture_output=True, text=True,
                            timeout=600, env={**os.environ, **STEADY_ALLOCATOR})
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"6000x4500: ICEdit Save Image peak +{measured['peak'] / MIB:.1f} MiB, "
          f"file {measured['file_bytes'] / MIB:.1f} MiB")
    assert measured["file_bytes"] > 1 * MIB  # it did save the picture
    assert measured["peak"] <= BOUND_MIB * MIB
