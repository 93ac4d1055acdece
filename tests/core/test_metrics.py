"""The paper's metrics: L1 by hand and the locality measure (pure icedit_core)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from comfyui_icedit.icedit_core import metrics


def test_l1_matches_a_hand_computation():
    target = np.zeros((2, 3, 3), dtype=np.uint8)
    target[0, 0] = [255, 0, 0]
    output = np.full((2, 3, 3), 51, dtype=np.uint8)  # 0.2 everywhere
    expected = (abs(0.2 - 1.0) + 0.2 + 0.2 + 5 * 3 * 0.2) / 18
    assert metrics.l1_distance(Image.fromarray(output), Image.fromarray(target)) == pytest.approx(expected, abs=1e-12)
    # The output is resized to the target's size first.
    assert metrics.l1_distance(Image.new("RGB", (30, 20), (51, 51, 51)), Image.new("RGB", (3, 2))) == \
        pytest.approx(0.2, abs=1e-12)


def test_locality_says_whether_an_edit_stayed_inside_its_mask():
    source = torch.full((1, 40, 60, 3), 0.5)
    mask = torch.zeros((1, 40, 60))
    mask[:, 10:30, 20:40] = 1
    aimed = source.clone()
    aimed[:, 10:30, 20:40] = 0.9  # changed exactly where the mask is
    spilled = aimed.clone()
    spilled[:, :, :10] = 0.1  # and a strip of the rest too
    inside_only = metrics.locality(aimed, source, mask)
    assert inside_only["change_inside_mask"] == pytest.approx(0.4, abs=0.003)
    assert inside_only["change_outside_mask"] == 0 and inside_only["changed_outside_share"] == 0
    leaky = metrics.evaluate(spilled, source=source, mask=mask)
    assert leaky["changed_outside_share"] == pytest.approx(40 * 10 / (40 * 60 - 20 * 20))
    assert leaky["change_outside_mask"] > 0.05
    with pytest.raises(ValueError, match="the mask is 30x30 but the source is 60x40"):
        metrics.locality(aimed, source, torch.ones((1, 30, 30)))
    with pytest.raises(ValueError, match="covers all of the image or none"):
        metrics.locality(aimed, source, torch.zeros((1, 40, 60)))
