"""Compound edit requests ("make the sky red and add a kite") as a list of single edits, one per turn.

ICEdit does one simple edit per pass; a request that asks for several is better run as several turns
(ICEdit Multi-Turn Edit). Two planners:

- `split_compound`: offline rules, no model. Splits at
  - new lines, `;`, and sentence ends (`.`, `!`, `?` followed by a space; not after an abbreviation in
    `ABBREVIATIONS`: e.g., i.e., etc., Mr., Dr., St., ...);
  - "then", "and then", "after that", "afterwards" (always, wherever they stand);
  - "and", ", and", "&" or a comma ONLY where both sides are imperative clauses: the clause before starts with
    an edit verb (or has one right after an introductory phrase and its comma: "In the background, add a
    tree"), and the text after starts with an edit verb from `EDIT_VERBS` followed by another word that is not
    "of", "and", "or", "is", ... Verbs that are also common nouns (`NOUN_LIKE_VERBS`: paint, color, set, flip,
    ...) count only when an article, a pronoun, a number or a particle follows ("paint the door", "turn off
    the lights"; not "paint cans", "flip flops").
  Nothing inside double quotes is split. A leading list marker ("1.", "-", "Step 2:") is dropped from each line;
  each piece keeps its wording, less surrounding white space, trailing punctuation and a leading connector
  ("and", "then", "also"; "first", "next", "finally", "now", ... only when a comma or an edit verb follows).

  Limits, plainly:
  - an "and" before a verb that is not in `EDIT_VERBS` is not split ("make the cake pink and sprinkle glitter
    on it" stays whole), nor one whose clause does not start with an edit verb ("the sky should be red and add
    a kite" stays whole);
  - a verb shared by two objects is not repeated: "make the sky red and the grass green" stays one edit;
  - "then" is split even where no edit follows it: "make it red then blue" gives "make it red" and "blue";
  - pronouns ("it", "them") are not resolved, so a later piece may need an earlier one to make sense;
  - the order is kept as written, never changed;
  - "as well as", "plus", "or" and single quotes are not looked at.
  A noun phrase with "and" ("black and white", "a cat and a dog") stays whole because what follows the "and"
  is not an edit verb.

- a planner model (a chat judge's `ask`): asked with `judge.prompts.plan_instructions`, its answer read by
  `parse_plan` (numbered or bulleted list, "Step N:" lines, or a JSON array). An answer with no readable steps
  falls back to the rules, and the plan's note says so.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Callable

from .judge import prompts

# Words that start an edit instruction. An "and" or a comma splits a request only when one of these follows.
EDIT_VERBS = frozenset({
    "add", "apply", "attach", "bring", "brighten", "change", "clean", "clear", "color", "colorize", "colour",
    "colourize", "convert", "cover", "crop", "darken", "decorate", "delete", "desaturate", "draw", "dress", "dye",
    "enlarge", "erase", "expand", "extend", "fill", "fix", "flip", "get", "give", "hang", "have", "hide",
    "increase", "insert", "invert", "keep", "let", "light", "lighten", "lower", "make", "mirror", "move", "open",
    "paint", "place", "put", "raise", "recolor", "recolour", "reduce", "remove", "render", "replace", "restore",
    "rotate", "saturate", "set", "sharpen", "shrink", "sketch", "stylize", "stylise", "substitute", "surround",
    "swap", "switch", "take", "tint", "transform", "turn", "use", "wrap", "write", "blur", "close", "cut",
    "decrease", "show",
})
# Edit verbs that are also common nouns or adjectives ("paint cans", "set of", "flip flops", "clear water"):
# they start a clause only when an object word (`OBJECT_STARTERS`) follows.
NOUN_LIKE_VERBS = frozenset({
    "blur", "clean", "clear", "close", "color", "colour", "cover", "crop", "cut", "dress", "dye", "fill", "fix",
    "flip", "keep", "light", "lower", "mirror", "open", "paint", "place", "set", "show", "sketch", "switch", "tint",
    "turn", "wrap",
})
# What an imperative's object or particle starts with.
OBJECT_STARTERS = frozenset({
    "the", "a", "an", "this", "that", "these", "those", "it", "its", "them", "him", "her", "his", "their", "they",
    "he", "she", "me", "my", "our", "your", "us", "all", "every", "each", "everything", "everyone", "everybody",
    "something", "some", "any", "both", "one", "two", "three", "four", "five", "another", "other", "more", "less",
    "on", "off", "up", "down", "out", "in", "into", "over", "away", "back", "around", "to", "onto",
})
# A verb followed by one of these is a noun or part of a noun phrase ("a set of", "give and take").
NOT_AN_OBJECT = frozenset({"of", "and", "or", "nor", "but", "is", "are", "was", "were"})
QUOTE_MARKS = frozenset({"\"", "\u201c", "\u00ab"})
# Words that may stand before the verb of a clause ("and also add", ", please remove", "First, make").
LEAD_WORDS = frozenset({"and", "also", "please", "then", "now", "just", "first", "firstly", "second", "secondly",
                        "third", "thirdly", "next", "finally", "lastly"})
# Connectors dropped from the start of a piece: always, or only before a comma or an edit verb ("next to ...").
CONNECTORS = ("and", "then", "also", "after that", "afterwards", "afterward")
SEQUENCE_WORDS = ("first", "firstly", "second", "secondly", "third", "thirdly", "next", "finally", "lastly", "now")
ABBREVIATIONS = frozenset({"e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "st", "approx", "fig", "cf"})

LIST_MARKER = re.compile(r"^\s*(?:step\s*\d+\s*[:.)-]|\(?\d+\s*[.):]|[-*\u2022+])\s+", re.IGNORECASE)
THEN_SPLIT = re.compile(r"\s*,?\s*\b(?:and\s+)?(?:then|after\s+that|afterwards?)\b\s*,?\s*", re.IGNORECASE)
SENTENCE_END = re.compile(r"[.!?]+(?=\s)")
SOFT_SPLIT = re.compile(r"\s*,\s*(?:and\s+)?|\s+(?:and|&)\s+", re.IGNORECASE)
QUOTED = re.compile(r"\"[^\"\n]*\"|\u201c[^\u201d\n]*\u201d|\u00ab[^\u00bb\n]*\u00bb")
WORD = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")
TRAILING = ".,;:!? \t"
TRAILING_CONNECTOR = re.compile(r"(?:[\s,]+(?:and|then))+$", re.IGNORECASE)


def _mask_quotes(text: str) -> str:
    """The text with quoted passages blanked (same length), so split points are never found inside them."""
    return QUOTED.sub(lambda match: match.group(0)[0] + "\x00" * (len(match.group(0)) - 2) + match.group(0)[-1],
                      text)


def _cut(text: str, masked: str, pattern: re.Pattern, keep=lambda match: True) -> list[tuple[str, str]]:
    """(piece, masked piece) pairs of `text` cut at the matches of `pattern` in `masked` that `keep` accepts."""
    pieces, start = [], 0
    for match in pattern.finditer(masked):
        if keep(match):
            pieces.append((text[start:match.start()], masked[start:match.start()]))
            start = match.end()
    pieces.append((text[start:], masked[start:]))
    return pieces


def _is_sentence_end(match: re.Match) -> bool:
    before = re.search(r"([A-Za-z.]+)$", match.string[:match.start()])
    word = before.group(1).lower().rstrip(".") if before else ""
    return not (word in ABBREVIATIONS and match.group(0) == ".")  # "e.g. a hat", "Dr. Who"


def starts_imperative(text: str) -> bool:
    """Does `text` start with an edit verb used as a verb ("add a kite", "also remove it", "turn off the lamp")?"""
    words = [word.lower() for word in WORD.findall(text)]
    while words and (words[0] in LEAD_WORDS or words[0] == ","):
        words.pop(0)
    if len(words) < 2 or words[0] not in EDIT_VERBS:
        return False
    verb, following = words[0], words[1]
    if following in QUOTE_MARKS:
        return True  # write "Open" on the door
    if not following[0].isalnum() or following in NOT_AN_OBJECT:
        return False  # "make-up", "paint,", "set of"
    if verb in NOUN_LIKE_VERBS:
        return following in OBJECT_STARTERS or following.isdigit()
    return True


def _split_clauses(text: str, masked: str) -> list[str]:
    """Cut one sentence at "and" / commas that stand between two imperative clauses."""
    imperative = starts_imperative(masked)
    clause_start = 0

    def between_imperatives(match: re.Match) -> bool:
        nonlocal imperative, clause_start
        if not starts_imperative(masked[match.end():]):
            return False
        before = [word.lower() for word in WORD.findall(masked[clause_start:match.start()]) if word[0].isalnum()]
        if not set(before) - LEAD_WORDS:
            return False  # "First, make ...": nothing but a connector before the comma
        if imperative:
            clause_start = match.end()
            return True
        if "," in match.group(0) and "and" not in match.group(0).lower():
            imperative = True  # an introductory phrase and its comma: "In the background, add a tree"
        return False

    return [piece for piece, _ in _cut(text, masked, SOFT_SPLIT, between_imperatives)]


def _strip_connectors(piece: str) -> str:
    while True:
        piece = piece.strip().lstrip(",;:").strip()
        lowered = piece.lower()
        for word in CONNECTORS + SEQUENCE_WORDS:
            if re.match(rf"{word}\b", lowered):
                rest = piece[len(word):]
                conditional = word in SEQUENCE_WORDS
                if not conditional or rest.lstrip().startswith(",") or starts_imperative(rest):
                    piece = rest
                    break
        else:
            return piece


def _clean(piece: str) -> str:
    piece = _strip_connectors(piece).rstrip(TRAILING)
    return TRAILING_CONNECTOR.sub("", piece).rstrip(TRAILING).strip()  # "add a hat, and, then, ..." leaves ", and"


def split_compound(text: str) -> list[str]:
    """The single edits a compound request asks for, in the order written (rules only; see the module's notes)."""
    steps = []
    for line in (text or "").splitlines():
        line = LIST_MARKER.sub("", line, count=1)
        masked_line = _mask_quotes(line)
        for part, masked_part in _cut(line, masked_line, re.compile(r";")):
            for sentence, masked_sentence in _cut(part, masked_part, SENTENCE_END, _is_sentence_end):
                for step, masked_step in _cut(sentence, masked_sentence, THEN_SPLIT):
                    for clause in _split_clauses(step, masked_step):
                        cleaned = _clean(clause)
                        if any(character.isalnum() for character in cleaned):
                            steps.append(cleaned)
    return steps


# --- a planner model's answer -------------------------------------------------------------------------------

FENCED = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.DOTALL)
NUMBERED = re.compile(r"^\s*(?:step\s*(\d+)\s*[:.)\-]\s*|\(?(\d+)[.):]\s+)(.*)$", re.IGNORECASE)
BULLET = re.compile(r"^\s*[-*\u2022+]\s+(.*)$")
INLINE_NUMBER = re.compile(r"(?:^|(?<=\s))(\d+)[.)]\s+")
LIST_KEYS = ("steps", "edits", "instructions", "plan")
ITEM_KEYS = ("instruction", "edit", "step", "text")


def _clean_step(step: str) -> str:
    step = LIST_MARKER.sub("", str(step).strip(), count=1).strip()
    step = re.sub(r"^(\*\*|__|`)(.*?)\1", r"\2", step)  # markdown emphasis around the step's start: **Add**
    step = step.strip("*_` ")
    if len(step) >= 2 and step[0] == step[-1] and step[0] in "\"'" and step.count(step[0]) == 2:
        step = step[1:-1]  # "make the sky red", quoted whole
    return step.rstrip(TRAILING).strip()


def _steps_from_json(value) -> list[str] | None:
    if isinstance(value, dict):
        value = next((value[key] for key in LIST_KEYS if isinstance(value.get(key), list)), None)
    if not isinstance(value, list):
        return None
    steps = []
    for item in value:
        if isinstance(item, dict):
            item = next((item[key] for key in ITEM_KEYS if isinstance(item.get(key), str)), "")
        if isinstance(item, str) and _clean_step(item):
            steps.append(_clean_step(item))
    return steps


def _steps_from_json_texts(texts) -> list[str] | None:
    """The steps of the first text that is JSON holding a list ([] when that list is empty), else None."""
    for text in texts:
        try:
            value = json.loads(text)
        except ValueError:
            continue
        steps = _steps_from_json(value)
        if steps is not None:
            return steps
    return None


def _embedded_json(answer: str):
    """The widest [...] and {...} in an answer that has prose around its JSON."""
    for opening, closing in ("[]", "{}"):
        first, last = answer.find(opening), answer.rfind(closing)
        if 0 <= first < last:
            yield answer[first:last + 1]


def _steps_from_lines(answer: str) -> list[str]:
    numbered, bullets, current = [], [], None
    for line in answer.splitlines():
        indented = line[:1] in (" ", "\t")
        if (match := NUMBERED.match(line)) and match.group(3).strip():
            current = numbered
            numbered.append(match.group(3))
        elif (match := BULLET.match(line)) and not (indented and numbered):  # not a numbered step's sub-point
            current = bullets
            bullets.append(match.group(1))
        elif current is not None and indented and line.strip() and not BULLET.match(line):
            current[-1] += " " + line.strip()  # a step wrapped onto the next line
        elif not indented:
            current = None  # prose between or after the list
    chosen = numbered or bullets
    if len(chosen) <= 1:  # "1. make it red 2. add a kite" on one line
        marks = list(INLINE_NUMBER.finditer(answer))
        if len(marks) >= 2 and [int(mark.group(1)) for mark in marks] == list(range(1, len(marks) + 1)):
            ends = [mark.start() for mark in marks[1:]] + [len(answer)]
            chosen = [answer[mark.end():end] for mark, end in zip(marks, ends, strict=True)]
    return [step for step in (_clean_step(item) for item in chosen) if step]


def parse_plan(answer: str) -> list[str] | None:
    """The steps in a planner model's answer: a numbered list ("1. ...", "1) ...", "Step 1: ..."), a bullet list
    ("- ...", "* ..."), or a JSON array of strings (bare, in a ```json fence, or under "steps"/"edits" of an
    object). None when there is no list or it has no steps."""
    answer = (answer or "").strip()
    if not answer:
        return None
    fenced = [match.group(1).strip() for match in FENCED.finditer(answer)]
    steps = _steps_from_json_texts(fenced + [answer])
    if steps is None:
        # A list in lines before JSON found inside prose: '1. add a sign reading ["Open"]' is a list.
        steps = _steps_from_lines(answer) or _steps_from_json_texts(_embedded_json(answer))
    return steps or None


# --- the plan -----------------------------------------------------------------------------------------------

@dataclass
class Plan:
    steps: list[str] = field(default_factory=list)
    method: str = "rules"  # "rules" or "model"
    note: str = ""

    def as_text(self) -> str:
        """One instruction per line: what ICEdit Multi-Turn Edit's `instructions` takes."""
        return "\n".join(self.steps)


def _count(steps: list[str]) -> str:
    return f"{len(steps)} edit{'' if len(steps) == 1 else 's'}"


def _rules_plan(text: str, note_start: str) -> Plan:
    steps = split_compound(text)
    if not steps:
        raise ValueError(f"nothing to plan in {text.strip()[:100]!r}: write the edits as words, "
                         "e.g. 'make the sky red and add a kite'")
    detail = "no split point, kept as one edit" if len(steps) == 1 else f"split into {_count(steps)}"
    return Plan(steps, "rules", f"{note_start}{detail}")


def require_text(text: str) -> None:
    """An empty request is an error (callers check it before they contact a model)."""
    if not (text or "").strip():
        raise ValueError("the instruction is empty; write the edits to plan, e.g. "
                         "'make the sky red and add a kite'")


def plan(text: str, ask: Callable[[str], str] | None = None, with_image: bool = False) -> Plan:
    """The single edits `text` asks for. With `ask` (a prompt -> answer callable, e.g. a chat judge), a model
    plans; an answer with no readable steps falls back to the rules, and the note says so."""
    require_text(text)
    if ask is None:
        return _rules_plan(text, "rules: ")
    answer = ask(prompts.plan_instructions(text, with_image=with_image))
    steps = parse_plan(answer)
    if steps:
        return Plan(steps, "model", f"model: {_count(steps)}")
    shown = " ".join(str(answer or "").split())
    shown = shown if len(shown) <= 100 else shown[:100] + "..."
    return _rules_plan(text, f'the model\'s answer had no readable list of steps: "{shown}"; fell back to rules: ')
