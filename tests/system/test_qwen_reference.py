"""ICEdit Qwen-Image-Edit Encode at its default (1 megapixel) is ComfyUI's own TextEncodeQwenImageEditPlus, bit for
bit. In-process like tests/pack, but in this tier: the stock node's 1-megapixel VAE encode takes about 9 s here."""
from __future__ import annotations

import pytest
import torch

from comfy_extras.nodes_qwen import TextEncodeQwenImageEditPlus

from comfyui_icedit.nodes.editors import ICEditQwenImageEditEncode


@pytest.fixture(autouse=True)
def like_comfyuis_executor():
    with torch.inference_mode():
        yield


def test_the_default_reference_is_the_stock_plus_nodes_own(qwen_clip, qwen_vae):
    source = torch.rand((1, 48, 64, 3), generator=torch.Generator().manual_seed(4))
    positive, negative, latent, layout, _ = ICEditQwenImageEditEncode.execute(qwen_clip, qwen_vae, source,
                                                                              "make it red", "").result
    stock = TextEncodeQwenImageEditPlus.execute(qwen_clip, "make it red", qwen_vae, image1=source).result[0]
    assert torch.equal(positive[0][0], stock[0][0])
    reference = stock[0][1]["reference_latents"]
    assert len(reference) == 1 and torch.equal(positive[0][1]["reference_latents"][0], reference[0])
    assert torch.equal(negative[0][1]["reference_latents"][0], reference[0])  # the negative sees the same source
    assert torch.equal(latent["samples"], reference[0])
    # About 1 megapixel at the source's 4:3, rounded to 8 (1184x888) by the stock node.
    assert (layout.working_width, layout.working_height) == (1184, 888)
