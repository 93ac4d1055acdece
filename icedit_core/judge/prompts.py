"""What the judges are asked.

PAIRWISE follows the paper's Early Filter prompt (supp. C): three images - edit 1, edit 2, the original - and
"Answer with 1 or 2 and briefly explain why". The VIEScore prompts (TIGER-AI-Lab/VIEScore) ask for JSON scores
0-10: semantic consistency [editing success, over-editing] and perceptual quality [naturalness, artifacts].
"""

PAIRWISE = (
    "You are judging two attempts at editing an image. The images are, in order: EDIT 1, EDIT 2, and the "
    "ORIGINAL image. The editing instruction was: \"{instruction}\".\n"
    "Which edit follows the instruction better, with higher image quality and fewer artifacts? Areas the "
    "instruction does not ask to change must stay identical to the original.\n"
    "Answer with 1 or 2 and briefly explain why."
)

SEMANTIC_CONSISTENCY = (
    "You are a professional digital artist. You will have to evaluate the effectiveness of an AI-edited image. "
    "The two images are, in order: the ORIGINAL image and the EDITED image. The editing instruction was: "
    "\"{instruction}\".\n"
    "Give two scores from 0 to 10:\n"
    "- the first: how well the edited image follows the instruction (0: not at all, 10: perfectly);\n"
    "- the second: the degree of over-editing (0: the edited image is completely different from the original, "
    "10: only what the instruction asks for was changed).\n"
    "Answer only in JSON: {{\"score\": [first, second], \"reasoning\": \"...\"}}"
)

PERCEPTUAL_QUALITY = (
    "You are a professional digital artist. You will have to evaluate the quality of an AI-generated image.\n"
    "Give two scores from 0 to 10:\n"
    "- the first: naturalness (0: the scene looks unnatural, wrong lighting, sense of distance or shadows; "
    "10: perfectly natural);\n"
    "- the second: artifacts (0: heavy distortion, watermarks, scratches, blurred faces, unusual body parts; "
    "10: no artifacts).\n"
    "Answer only in JSON: {{\"score\": [naturalness, artifacts], \"reasoning\": \"...\"}}"
)


def pairwise(instruction: str) -> str:
    return PAIRWISE.format(instruction=instruction.strip())


def semantic_consistency(instruction: str) -> str:
    return SEMANTIC_CONSISTENCY.format(instruction=instruction.strip())


def perceptual_quality() -> str:
    return PERCEPTUAL_QUALITY


# Planning: a compound request ("make the sky red and add a kite") as single edits, one per ICEdit turn.
PLAN_INSTRUCTIONS = (
    "You plan edits for an image editor that can only do ONE simple edit at a time. Split the edit request "
    "below into single, self-contained edit instructions, in the order they should be applied.\n"
    "- Each instruction is imperative and short (e.g. \"add a red kite in the sky\") and makes sense on its "
    "own: name the object instead of writing \"it\".\n"
    "- Keep every edit that was asked for; add none, merge none.\n"
    "- A request that is already a single edit is answered with that one instruction.\n"
    "{image_line}"
    "Edit request: \"{compound}\"\n"
    "Answer with a numbered list only (\"1. ...\", one instruction per line), nothing else."
)
PLAN_IMAGE_LINE = "The attached image is the picture to be edited; use it only to understand the request.\n"


def plan_instructions(compound: str, with_image: bool = False) -> str:
    """Ask to split a compound edit request into a numbered list of single edit instructions, in order."""
    return PLAN_INSTRUCTIONS.format(compound=compound.strip(), image_line=PLAN_IMAGE_LINE if with_image else "")
