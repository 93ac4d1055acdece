"""ICEdit Save Image against ComfyUI's own SaveImage, both called in this process: the same files byte for byte
(pixels, PNG text chunks, compression), the same names and counter, the same UI result. Its memory on a large
image is measured in tests/system/test_save_image_memory.py."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from comfyui_icedit.nodes import save_image
from comfyui_icedit.nodes.save_image import ICEditSaveImage

PROMPT = {"13": {"class_type": "ICEditSaveImage", "inputs": {"filename_prefix": "ICEdit/edited", "images": ["12", 0]}}}
EXTRA_PNGINFO = {"workflow": {"nodes": [{"id": 13, "type": "ICEditSaveImage"}], "links": []}, "note": "é ✓"}


def awkward_batch(batch=2, height=37, width=29, channels=3, seed=0) -> torch.Tensor:
    """Random values well outside 0..1 (negative, above 1) with NaN, +inf and -inf sprinkled over every band."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn((batch, height, width, channels), generator=generator) * 0.8 + 0.5
    flat = images.view(-1)
    picks = torch.randperm(flat.numel(), generator=generator)
    flat[picks[:40]] = float("nan")
    flat[picks[40:60]] = float("inf")
    flat[picks[60:80]] = float("-inf")
    flat[picks[80:100]] = 1.0 - 1e-7  # just below 1: 254.99997 truncates to 254, as in SaveImage
    return images


def comfy_save(output_dir, monkeypatch, images, prefix, prompt=PROMPT, extra_pnginfo=EXTRA_PNGINFO) -> dict:
    import folder_paths
    import nodes as comfy_nodes

    monkeypatch.setattr(folder_paths, "output_directory", str(output_dir))
    return comfy_nodes.SaveImage().save_images(images, prefix, prompt=prompt, extra_pnginfo=extra_pnginfo)["ui"]


def icedit_save(output_dir, monkeypatch, images, prefix, prompt=PROMPT, extra_pnginfo=EXTRA_PNGINFO) -> dict:
    """The node as ComfyUI's executor runs it: a class clone holding the hidden inputs."""
    import folder_paths
    from comfy_api.latest import io

    monkeypatch.setattr(folder_paths, "output_directory", str(output_dir))
    node = ICEditSaveImage.PREPARE_CLASS_CLONE({io.Hidden.prompt: prompt, io.Hidden.extra_pnginfo: extra_pnginfo})
    output = node.execute(images, prefix)
    assert output.result is None
    return output.ui.as_dict()


def saved_files(folder) -> dict[str, bytes]:
    return {os.path.relpath(os.path.join(root, name), folder): open(os.path.join(root, name), "rb").read()
            for root, _, names in os.walk(folder) for name in names}


@pytest.mark.parametrize("band_rows", [1, 5, 64], ids=["a band a row", "5-row bands", "one band"])
@pytest.mark.parametrize("channels", [3, 4], ids=["RGB", "RGBA"])
def test_the_files_are_save_images_byte_for_byte(tmp_path, monkeypatch, band_rows, channels):
    images = awkward_batch(channels=channels)
    monkeypatch.setattr(save_image, "BAND_BYTES", band_rows * images.shape[2] * channels * 4)
    ours = icedit_save(tmp_path / "ours", monkeypatch, images, "ICEdit/edited")
    theirs = comfy_save(tmp_path / "comfy", monkeypatch, images, "ICEdit/edited")
    assert ours == theirs == {"images": [{"filename": f"edited_0000{i}_.png", "subfolder": "ICEdit",
                                          "type": "output"} for i in (1, 2)]}
    ours_files, comfy_files = saved_files(tmp_path / "ours"), saved_files(tmp_path / "comfy")
    assert sorted(ours_files) == [os.path.join("ICEdit", f"edited_0000{i}_.png") for i in (1, 2)]
    assert ours_files == comfy_files  # pixels, text chunks, zlib level: all of it
    # And what that means, said directly:
    with Image.open(tmp_path / "ours" / "ICEdit" / "edited_00001_.png") as saved:
        assert saved.mode == ("RGB" if channels == 3 else "RGBA")
        expected = np.clip(255. * images[0].numpy(), 0, 255).astype(np.uint8)
        assert np.array_equal(np.asarray(saved), expected)
        assert saved.text == {"prompt": json.dumps(PROMPT), "workflow": json.dumps(EXTRA_PNGINFO["workflow"]),
                              "note": json.dumps(EXTRA_PNGINFO["note"])}


def test_nan_inf_and_out_of_range_values_map_as_in_save_image(monkeypatch):
    values = torch.tensor([float("nan"), float("inf"), float("-inf"), -0.5, -0.0, 0.0, 0.5, 1.0 - 1e-7, 1.0, 1.5,
                           1e30], dtype=torch.float32)
    image = values.view(1, -1, 1).expand(11, 11, 3).contiguous()  # every value on every row
    monkeypatch.setattr(save_image, "BAND_BYTES", 2 * 11 * 3 * 4)
    ours = np.asarray(save_image.tensor_to_pil(image))
    with np.errstate(invalid="ignore"):
        theirs = np.asarray(Image.fromarray(np.clip(255. * image.numpy(), 0, 255).astype(np.uint8)))
    assert np.array_equal(ours, theirs)
    assert ours[0, :, 0].tolist()[1:] == [255, 0, 0, 0, 0, 127, 254, 255, 255, 255]
    assert ours[:, 0, 0].tolist() == [theirs[0, 0, 0]] * 11  # NaN: whatever numpy's cast gives, on every band


def test_names_and_counter_follow_save_image(tmp_path, monkeypatch):
    """%batch_num%, the counter across a batch and across runs, a prefix with a folder and one without."""
    images = awkward_batch(batch=3, height=8, width=6)
    runs = [("run/item_%batch_num%", images), ("run/item_%batch_num%", images[:1]), ("flat", images[:2]),
            ("flat", images[:1])]
    ours = [icedit_save(tmp_path / "ours", monkeypatch, batch, prefix) for prefix, batch in runs]
    theirs = [comfy_save(tmp_path / "comfy", monkeypatch, batch, prefix) for prefix, batch in runs]
    assert ours == theirs
    assert [entry["filename"] for entry in ours[0]["images"]] == ["item_0_00001_.png", "item_1_00002_.png",
                                                                  "item_2_00003_.png"]
    # SaveImage's counter looks for files named like the prefix as written, which "item_%batch_num%" never is: it
    # starts again at 1 (and the second run overwrites the first's item_0). The same here, as that is SaveImage.
    assert [entry["filename"] for entry in ours[1]["images"]] == ["item_0_00001_.png"]
    assert [entry["filename"] for entry in ours[3]["images"]] == ["flat_00003_.png"]
    assert saved_files(tmp_path / "ours") == saved_files(tmp_path / "comfy")


def test_no_prompt_and_disable_metadata_write_what_save_image_writes(tmp_path, monkeypatch):
    from comfy.cli_args import args

    images = awkward_batch(batch=1, height=9, width=7)
    assert icedit_save(tmp_path / "ours", monkeypatch, images, "bare", None, None) == \
        comfy_save(tmp_path / "comfy", monkeypatch, images, "bare", None, None)
    monkeypatch.setattr(args, "disable_metadata", True)
    icedit_save(tmp_path / "ours", monkeypatch, images, "off")
    comfy_save(tmp_path / "comfy", monkeypatch, images, "off")
    ours = saved_files(tmp_path / "ours")
    assert ours == saved_files(tmp_path / "comfy")
    with Image.open(tmp_path / "ours" / "off_00001_.png") as saved:
        assert saved.text == {}


def test_the_node_is_an_output_node_with_save_images_inputs():
    import nodes as comfy_nodes

    schema = ICEditSaveImage.define_schema()
    schema.finalize()
    assert schema.is_output_node and not schema.outputs
    info = ICEditSaveImage.GET_NODE_INFO_V1()
    stock = comfy_nodes.SaveImage.INPUT_TYPES()
    assert list(info["input"]["required"]) == list(stock["required"]) == ["images", "filename_prefix"]
    assert {name: spec[0] for name, spec in info["input"]["hidden"].items()} == stock["hidden"]
    assert all(spec[1].get("tooltip") for spec in info["input"]["required"].values())
