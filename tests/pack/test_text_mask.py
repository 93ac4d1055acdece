"""ICEdit Text Mask: CLIPSeg through transformers on a tiny random-weight CLIPSeg saved to a temporary
models/clipseg folder (shapes, the node, bad input), and the threshold / grow / fill-holes steps on synthetic
probability maps."""
from __future__ import annotations

import folder_paths
import pytest
import torch

from comfyui_icedit.devtools.smoke_models import save_tiny_clipseg
from comfyui_icedit.icedit_core import text_mask as tm
from comfyui_icedit.nodes.text_mask import ICEditTextMask


@pytest.fixture(scope="module")
def clipseg_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("models") / "clipseg"
    save_tiny_clipseg(str(root / "tiny-clipseg"))
    (root / "no-weights").mkdir()
    (root / "no-weights" / "config.json").write_text("{}")
    folder_paths.add_model_folder_path("clipseg", str(root))
    return root


def test_the_mask_has_the_image_size_for_every_image_of_a_batch(clipseg_folder):
    images = torch.rand((2, 50, 70, 3), generator=torch.Generator().manual_seed(1))
    output = ICEditTextMask.execute(images, "tiny-clipseg", "the dog, a ball", 0.5, 0, False)
    (mask,) = output.result
    assert mask.shape == (2, 50, 70) and set(mask.unique().tolist()) <= {0.0, 1.0} and mask.any()
    assert "% of the image masked" in output.ui.as_dict()["text"][0]
    masker = tm.ClipSegMasker(str(clipseg_folder / "tiny-clipseg"))
    probabilities = masker.probabilities(images, ["the dog", "a ball"])
    assert torch.equal(mask, (probabilities > 0.5).float())
    assert not torch.equal(probabilities[0], probabilities[1])  # each image of the batch is searched on its own


def test_threshold_grow_and_fill_holes_on_a_synthetic_map():
    probabilities = torch.zeros((1, 30, 40))
    probabilities[:, 5:25, 5:35] = 0.9
    probabilities[:, 12:18, 15:25] = 0.3  # a hole where the model was unsure
    assert tm.mask_from_probabilities(probabilities, 0.5).sum() == 20 * 30 - 6 * 10
    assert tm.mask_from_probabilities(probabilities, 0.2).sum() == 20 * 30
    filled = tm.mask_from_probabilities(probabilities, 0.5, fill=True)
    assert filled.sum() == 20 * 30
    grown = tm.mask_from_probabilities(probabilities, 0.5, grow_pixels=2, fill=True)
    assert grown.sum() == 24 * 34
    assert not tm.mask_from_probabilities(probabilities, 0.95).any()


def test_bad_input_is_refused_with_the_reason(clipseg_folder):
    image = torch.rand((1, 40, 40, 3))
    with pytest.raises(ValueError, match=r"no-weights has no weights"):
        ICEditTextMask.execute(image, "no-weights", "the dog", 0.4, 0, False)
    with pytest.raises(ValueError, match="threshold = 1.5; it is a probability"):
        ICEditTextMask.execute(image, "tiny-clipseg", "the dog", 1.5, 0, False)
    with pytest.raises(ValueError, match="no phrase"):
        ICEditTextMask.execute(image, "tiny-clipseg", " , ", 0.4, 0, False)
    low = torch.full((1, 40, 40), 0.2)
    with pytest.raises(ValueError, match=r"matched 'the dog': the highest CLIPSeg probability is 0.20, below the "
                                         r"threshold 0.4.*nothing was edited"):
        tm.require_match(tm.mask_from_probabilities(low, 0.4), low, "the dog", 0.4)
