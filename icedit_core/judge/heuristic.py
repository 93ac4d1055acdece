"""A judge without a model or network: image statistics only.

What it measures, per edit against the original (resized to the same size):
- change: mean absolute difference. An edit should change something (below 1 % counts as "nothing edited")
  but not everything (above 15 % the over-editing score falls, reaching 0 at 40 %).
- sharpness: variance of the Laplacian relative to the original's. Much blurrier (< 60 %) or much noisier
  (> 3x) than the original loses points.
- saturation sanity: the share of clipped (near-black / near-white) channel values beyond the original's.
Semantic consistency = min(edit present, not over-edited), perceptual quality = min(sharpness, clipping),
overall = sqrt(SC * PQ), on 0..10 like VIEScore.

What it cannot judge: whether the edit does what the instruction says. It prefers a clean, moderate change
over none, a wholesale repaint, a blur or noise; use a VLM judge to rank by instruction following.
"""
from __future__ import annotations

import math

import numpy as np

from ..images import to_pil
from .protocol import Judge


def _gray(pixels: np.ndarray) -> np.ndarray:
    return pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _laplacian_variance(gray: np.ndarray) -> float:
    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return 0.0
    lap = (gray[1:-1, :-2] + gray[1:-1, 2:] + gray[:-2, 1:-1] + gray[2:, 1:-1] - 4 * gray[1:-1, 1:-1])
    return float(lap.var())


def _ramp(value: float, low: float, high: float) -> float:
    """0 at `low`, 1 at `high`, linear between (either direction)."""
    if high == low:
        return 1.0 if value >= high else 0.0
    return float(min(1.0, max(0.0, (value - low) / (high - low))))


def statistics(original, edit) -> dict:
    source = to_pil(original)
    result = to_pil(edit).resize(source.size)
    s = np.asarray(source, dtype=np.float32) / 255.0
    e = np.asarray(result, dtype=np.float32) / 255.0
    change = float(np.abs(e - s).mean())
    sharp_s, sharp_e = _laplacian_variance(_gray(s)), _laplacian_variance(_gray(e))
    ratio = sharp_e / sharp_s if sharp_s > 1e-8 else (1.0 if sharp_e <= 1e-8 else 3.0)
    clipped = float(((e <= 0.01) | (e >= 0.99)).mean() - ((s <= 0.01) | (s >= 0.99)).mean())
    return {"change": change, "sharpness_ratio": ratio, "extra_clipping": clipped}


class HeuristicJudge(Judge):
    name = "heuristic"

    def score(self, original, edit, instruction=""):
        stats = statistics(original, edit)
        edited = 10 * _ramp(stats["change"], 0.0, 0.01)
        not_over_edited = 10 * (1 - _ramp(stats["change"], 0.15, 0.40))
        ratio = stats["sharpness_ratio"]
        sharp = 10 * _ramp(ratio, 0.0, 0.6) * (1 - _ramp(ratio, 3.0, 6.0))
        clipping = 10 * (1 - _ramp(stats["extra_clipping"], 0.0, 0.2))
        sc, pq = min(edited, not_over_edited), min(sharp, clipping)
        return {"editing_success": edited, "over_editing": not_over_edited, "semantic_consistency": sc,
                "naturalness": sharp, "artifacts": clipping, "perceptual_quality": pq,
                "overall": math.sqrt(sc * pq),
                "reasoning": (f"change {stats['change']:.3f}, sharpness x{ratio:.2f}, "
                              f"extra clipping {stats['extra_clipping']:+.3f}")}

    def compare(self, original, edit_1, edit_2, instruction=""):
        first, second = self.score(original, edit_1), self.score(original, edit_2)
        choice = 2 if second["overall"] > first["overall"] else 1
        return choice, (f"overall {first['overall']:.2f} vs {second['overall']:.2f} "
                        f"({first['reasoning']} | {second['reasoning']})")
