"""Reading judges' answers. Vision-language models answer in many shapes - "1", "**Image 2** is better",
fenced JSON, scores as strings, a reasoning block first. Every reader returns None when it cannot tell,
never a guess; the Early Filter then keeps its current pick (pairwise) or ranks the candidate last (absolute).
"""
from __future__ import annotations

import ast
import json
import re

_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_FENCE = re.compile(r"```(?:json|JSON|python)?\s*(.*?)```", re.S)
_OBJECT = re.compile(r"\{.*\}", re.S)

_WORDS = {"1": 1, "2": 2, "one": 1, "two": 2, "first": 1, "second": 2, "former": 1, "latter": 2}
_CHOICE_KEYS = ("answer", "choice", "better", "best", "winner", "preferred", "selection", "result", "image", "edit")
_REASON_KEYS = ("reason", "reasoning", "explanation", "rationale", "why")

_NAME = r"(?:image|edit|edited image|option|candidate|picture|result|output)"
_CHOICE_PATTERNS = [
    # "1", "2.", "**2**", "(1)", "[2] because ..." at the very start
    re.compile(r"^\W*([12])(?![\d.]*\d)\b"),
    # "Answer: 2", "Final answer - **Image 1**", "My choice is edit 2"
    re.compile(r"\b(?:final answer|answer|choice|verdict|decision|winner)\b\W*(?:is\W*)?(?:" + _NAME + r"\W*)?#?\W*"
               r"(1|2|one|two|first|second)\b", re.I),
    # "Image 2 is better", "Edit #1 follows the instruction better", "option 2 wins"
    re.compile(r"\b" + _NAME + r"\W*#?\W*(1|2|one|two)\b[^.\n]{0,80}?\b(?:is|does|wins|follows|looks|performs|"
               r"better|best|preferred|superior)", re.I),
    # "I prefer the second edit", "I would choose image 1", "pick 2"
    re.compile(r"\b(?:prefer|choose|chose|pick|select|go with|recommend)\w*\W+(?:the\W+)?(?:" + _NAME +
               r"\W*)?#?\W*(1|2|one|two|first|second|former|latter)\b", re.I),
    # "The first edit is better", "the second one follows ..."
    re.compile(r"\bthe\W+(first|second|former|latter)\W+(?:" + _NAME + r"|one)?\b[^.\n]{0,80}?\b(?:is|does|wins|"
               r"follows|looks|better|best|preferred)", re.I),
]
_NEITHER = re.compile(r"^\W*(neither|both|none|tie|equal|cannot decide|can't decide)\b", re.I)


def _strip(answer) -> str:
    text = "" if answer is None else str(answer)
    return _THINK.sub("", text).strip()


def _json_candidates(text: str):
    for match in _FENCE.finditer(text):
        yield match.group(1).strip()
    match = _OBJECT.search(text)
    if match:
        yield match.group(0)


def _load_object(text: str):
    for candidate in _json_candidates(text):
        for loader in (json.loads, ast.literal_eval):
            try:
                value = loader(candidate)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(value, dict):
                return value
    return None


def _reason_from(obj: dict | None, text: str) -> str:
    if obj:
        for key in _REASON_KEYS:
            if isinstance(obj.get(key), str):
                return obj[key].strip()
    return " ".join(text.split())[:300]


def _choice_value(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and value in (1, 2):
        return int(value)
    if isinstance(value, str):
        found = re.findall(r"\b(1|2|one|two|first|second|former|latter)\b", value, re.I)
        distinct = {_WORDS[f.lower()] for f in found}
        if len(distinct) == 1:
            return distinct.pop()
    return None


def parse_choice(answer) -> tuple[int | None, str]:
    """(1 or 2 or None, the reason given) from a pairwise judge's answer."""
    text = _strip(answer)
    obj = _load_object(text)
    if obj is not None:
        lowered = {str(k).lower(): v for k, v in obj.items()}
        for key in _CHOICE_KEYS:
            if key in lowered:
                choice = _choice_value(lowered[key])
                if choice is not None:
                    return choice, _reason_from(obj, text)
    if not text or _NEITHER.match(text):
        return None, " ".join(text.split())[:300] or "(empty answer)"
    for pattern in _CHOICE_PATTERNS:
        match = pattern.search(text)
        if match:
            return _WORDS[match.group(1).lower()], _reason_from(None, text)
    return None, " ".join(text.split())[:300]


_NUMBER = r"(-?\d+(?:\.\d+)?)"


def _to_score(value, score_range: int = 10) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*" + _NUMBER + rf"\s*(?:/\s*{score_range})?\s*", value)
        if match:
            return float(match.group(1))
    return None


def _valid(scores, count: int, score_range: int = 10) -> list[float] | None:
    if scores is None or len(scores) != count or any(s is None for s in scores):
        return None
    if any(not 0.0 <= s <= score_range for s in scores):
        return None
    return scores


def parse_scores(answer, count: int = 2, score_range: int = 10) -> tuple[list[float] | None, str]:
    """(`count` scores in 0..score_range, or None; the reasoning) from a VIEScore-style answer (EditScore asks
    for 0..25)."""
    text = _strip(answer)
    obj = _load_object(text)
    if obj is not None:
        lowered = {str(k).lower(): v for k, v in obj.items()}
        for key in ("score", "scores", "rating", "ratings"):
            value = lowered.get(key)
            if isinstance(value, (list, tuple)):
                scores = _valid([_to_score(v, score_range) for v in value], count, score_range)
                if scores is not None:
                    return scores, _reason_from(obj, text)
            elif count == 1 and _to_score(value, score_range) is not None:
                scores = _valid([_to_score(value, score_range)], 1, score_range)
                if scores is not None:
                    return scores, _reason_from(obj, text)
        numeric = [_to_score(v, score_range) for k, v in obj.items() if str(k).lower() not in _REASON_KEYS]
        numeric = [v for v in numeric if v is not None]
        if len(numeric) == count:
            scores = _valid(numeric, count, score_range)
            if scores is not None:
                return scores, _reason_from(obj, text)
    # "score: [8, 7]" or "[8.5, '7']" outside JSON
    listed = re.search(r"\[\s*['\"]?" + _NUMBER + r"['\"]?(?:\s*,\s*['\"]?" + _NUMBER + r"['\"]?)*\s*\]", text)
    if listed:
        scores = _valid([float(n) for n in re.findall(_NUMBER, listed.group(0))], count, score_range)
        if scores is not None:
            return scores, _reason_from(None, text)
    # "8/10 ... 7/10"
    scores = _valid([float(n) for n in re.findall(_NUMBER + rf"\s*/\s*{score_range}\b", text)], count, score_range)
    if scores is not None:
        return scores, _reason_from(None, text)
    return None, " ".join(text.split())[:300]
