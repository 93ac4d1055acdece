"""ComfyUI's SaveImage without its full-size float copies: the same files, PNG text chunks and preview, the image
turned into 8 bits a band of rows at a time.

ComfyUI's SaveImage converts each image with `np.clip(255. * image.cpu().numpy(), 0, 255).astype(np.uint8)`: a
float32 copy of the whole image, a second one from the clip, the uint8 array, then PIL's own copy. For a
12000x9000 edit that is +2.7 GiB on top of what the cache holds (bench/results/large_image_cpu.json). Here the
same expression runs on one band of rows at a time (about BAND_BYTES of float), each band pasted into the PIL
image: what stays is the PIL image alone (4 bytes a pixel for RGB) and one band. The arithmetic per pixel is the
same as SaveImage's, so the pixels are the same bit for bit, NaN and out-of-range values included."""
from __future__ import annotations

import os

import folder_paths
import numpy as np
from comfy_api.latest import io, ui
from PIL import Image

from .validation import ICEditNode

CATEGORY = "ICEdit"
COMPRESS_LEVEL = 4  # SaveImage's
BAND_BYTES = 32 * 1024 * 1024  # float32 bytes of one band of rows (a 12000-wide RGB image: 233 rows)


def to_8bit(pixels) -> np.ndarray:
    """SaveImage's conversion, verbatim (comfy_api ImageSaveHelper._convert_tensor_to_pil without the PIL step):
    255 * x in the tensor's float type, clipped to 0..255 (NaN stays NaN), truncated to uint8."""
    return np.clip(255. * pixels.cpu().numpy(), 0, 255).astype(np.uint8)


def tensor_to_pil(image, band_bytes: int | None = None) -> Image.Image:
    """One image of an IMAGE batch (height, width[, channels]) as the PIL image SaveImage would save, built from
    bands of rows (each one `to_8bit`, moved to the CPU on its own) pasted into an image allocated once. The mode
    is what Image.fromarray makes of the first band (RGB for 3 channels, RGBA for 4), so an array PIL cannot take
    fails as it does in SaveImage."""
    height = image.shape[0]
    row_bytes = max(1, image[:1].numel() * 4)
    rows = max(1, (band_bytes or BAND_BYTES) // row_bytes)
    if height <= rows:
        return Image.fromarray(to_8bit(image))
    first = Image.fromarray(to_8bit(image[:rows]))
    picture = Image.new(first.mode, (first.width, height))
    picture.paste(first, (0, 0))
    del first
    for top in range(rows, height, rows):
        band = Image.fromarray(to_8bit(image[top:top + rows]))
        picture.paste(band, (0, top))
    return picture


class ICEditSaveImage(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditSaveImage",
            display_name="ICEdit Save Image (low memory)",
            category=CATEGORY,
            description="Saves images as ComfyUI's Save Image does (same files, metadata and preview), converting "
                        "them to 8 bits a band of rows at a time, so a very large image needs no full-size float "
                        "copies (2.2 GiB less at 12000x9000).",
            inputs=[
                io.Image.Input("images", tooltip="The images to save, at any size: a batch is saved as one PNG "
                                                 "per image."),
                io.String.Input("filename_prefix", default="ComfyUI",
                                tooltip="The prefix for the files, as in Save Image: a folder part ('ICEdit/"
                                        "edited') makes a subfolder of the output folder; it may include "
                                        "%date:yyyy-MM-dd%, %batch_num% or %Node name.widget% values. Files are "
                                        "named <prefix>_00001_.png, the number counting on from the last one "
                                        "there."),
            ],
            outputs=[],
            hidden=[io.Hidden.prompt, io.Hidden.extra_pnginfo],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, images, filename_prefix="ComfyUI") -> io.NodeOutput:
        # As ComfyUI's SaveImage / ImageSaveHelper.save_images, but for the conversion.
        full_output_folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, folder_paths.get_output_directory(), images[0].shape[1], images[0].shape[0])
        metadata = ui.ImageSaveHelper._create_png_metadata(cls)  # honours --disable-metadata
        results = []
        for batch_number, image in enumerate(images):
            picture = tensor_to_pil(image)
            file = f"{filename.replace('%batch_num%', str(batch_number))}_{counter:05}_.png"
            picture.save(os.path.join(full_output_folder, file), pnginfo=metadata, compress_level=COMPRESS_LEVEL)
            del picture
            results.append(ui.SavedResult(file, subfolder, io.FolderType.output))
            counter += 1
        return io.NodeOutput(ui=ui.SavedImages(results))


NODES = [ICEditSaveImage]
