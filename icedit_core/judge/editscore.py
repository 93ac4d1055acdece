"""EditScore (arXiv 2509.23909): an edit reward model - Qwen2.5-VL-7B-Instruct with a LoRA - that scores an edit
from the source, the result and the instruction. It asks VIEScore's two questions (semantic consistency: editing
success and over-editing, from the source and the result; perceptual quality: naturalness and artifacts, from the
result alone) on a 0-25 scale; each score is brought to VIEScore's 0-10 (x 10 / 25), SC and PQ are the minima of
their two, overall = sqrt(SC * PQ), and several passes (sampled, each with its own seed) are averaged.

The prompt texts below are the ones EditScore's release (the `editscore` package, Apache-2.0: vie_prompts.py and
EditScore.__init__) sends, with its 0-10 wording turned to 0-25 the way it does: its LoRA was trained on exactly
these words, so they are its input format, not ours to rephrase. The package itself is not imported (it edits
sys.path and loads models outside ComfyUI's memory management); an answer that cannot be read is not guessed at
random as there, but counts as no score, so it ranks last in the Early Filter as for every judge here.
"""
from __future__ import annotations

import math

from . import parsing

SCORE_RANGE = 25  # EditScore's default score_range
# EditScore samples its answers (temperature 0.7); pass i uses seed + i.
TEMPERATURE, SEED = 0.7, 42

CONTEXT = """You are a professional digital artist. You will have to evaluate the effectiveness of the AI-generated image(s) based on given rules.
All the input images are AI-generated. All human in the images are AI-generated too. so you need not worry about the privacy confidentials.

IMPORTANT: You will have to give your output in this way (Keep your reasoning concise and short.):
{
"reasoning" : "...",
"score" : [...]
}
"""  # noqa: E501  (the model's own words, kept verbatim)

TWO_IMAGE_EDIT_RULE = """RULES:

Two images will be provided: The first being the original AI-generated image and the second being an edited version of the first.
The objective is to evaluate how successfully the editing instruction has been executed in the second image.

Note that sometimes the two images might look identical due to the failure of image edit.
"""  # noqa: E501

SEMANTIC_CONSISTENCY_RULE = """
From scale 0 to 10: 
A score from 0 to 10 will be given based on the success of the editing. (0 indicates that the scene in the edited image does not follow the editing instruction at all. 10 indicates that the scene in the edited image follow the editing instruction text perfectly.)
A second score from 0 to 10 will rate the degree of overediting in the second image. (0 indicates that the scene in the edited image is completely different from the original. 10 indicates that the edited image can be recognized as a minimal edited yet effective version of original.)
Put the score in a list such that output score = [score1, score2], where 'score1' evaluates the editing success and 'score2' evaluates the degree of overediting.

Editing instruction: <instruction>
"""  # noqa: E501, W291

PERCEPTUAL_QUALITY_RULE = """RULES:

The image is an AI-generated image.
The objective is to evaluate how successfully the image has been generated.

From scale 0 to 10: 
A score from 0 to 10 will be given based on image naturalness. 
(
    0 indicates that the scene in the image does not look natural at all or give a unnatural feeling such as wrong sense of distance, or wrong shadow, or wrong lighting. 
    10 indicates that the image looks natural.
)
A second score from 0 to 10 will rate the image artifacts. 
(
    0 indicates that the image contains a large portion of distortion, or watermark, or scratches, or blurred faces, or unusual body parts, or subjects not harmonized. 
    10 indicates the image has no artifacts.
)
Put the score in a list such that output score = [naturalness, artifacts]
"""  # noqa: E501, W291


def semantic_consistency(instruction: str, score_range: int = SCORE_RANGE) -> str:
    """The question asked with [source, result]; every "10" of the rule becomes the range, as EditScore does."""
    rule = SEMANTIC_CONSISTENCY_RULE.replace("10", str(score_range))
    return "\n".join([CONTEXT, TWO_IMAGE_EDIT_RULE, rule]).replace("<instruction>", instruction.strip())


def perceptual_quality(score_range: int = SCORE_RANGE) -> str:
    """The question asked with the result alone."""
    return "\n".join([CONTEXT, PERCEPTUAL_QUALITY_RULE.replace("10", str(score_range))])


def one_pass(semantic_answer: str, perceptual_answer: str, score_range: int = SCORE_RANGE) -> dict | None:
    """One pass's scores on VIEScore's 0-10 (None when either answer has no two scores within 0..score_range)."""
    semantic, why_sc = parsing.parse_scores(semantic_answer, 2, score_range)
    perceptual, why_pq = parsing.parse_scores(perceptual_answer, 2, score_range)
    if semantic is None or perceptual is None:
        return None
    to_ten = 10.0 / score_range
    sc, pq = min(semantic) * to_ten, min(perceptual) * to_ten
    return {"editing_success": semantic[0] * to_ten, "over_editing": semantic[1] * to_ten,
            "semantic_consistency": sc, "naturalness": perceptual[0] * to_ten, "artifacts": perceptual[1] * to_ten,
            "perceptual_quality": pq, "overall": math.sqrt(sc * pq), "reasoning": f"{why_sc} | {why_pq}"}


def average(passes: list[dict | None]) -> dict | None:
    """The mean of the readable passes' scores (overall: the mean of each pass's overall, EditScore's default
    reduction); None when no pass could be read. `passes` says how many were read of how many asked."""
    readable = [p for p in passes if p is not None]
    if not readable:
        return None
    keys = [k for k, v in readable[0].items() if isinstance(v, float)]
    scores = {k: sum(p[k] for p in readable) / len(readable) for k in keys}
    scores["reasoning"] = readable[-1]["reasoning"]
    scores["passes"] = f"{len(readable)} of {len(passes)} readable"
    return scores


def score(ask, original, edit, instruction: str, passes: int = 1, score_range: int = SCORE_RANGE,
          seed: int = SEED) -> dict | None:
    """EditScore of one edit. `ask(images, prompt, seed)` is a chat judge's answer (sampled with that seed)."""
    if passes < 1:
        raise ValueError(f"passes = {passes}; EditScore needs at least one")
    results = []
    for index in range(passes):
        semantic = ask([original, edit], semantic_consistency(instruction, score_range), seed + index)
        perceptual = ask([edit], perceptual_quality(score_range), seed + index)
        results.append(one_pass(semantic, perceptual, score_range))
    return average(results)
