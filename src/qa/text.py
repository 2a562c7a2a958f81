"""Character-level text helpers shared by ingestion, chunking, tokenizing and answering.

- `clean` removes what no reader should see and no matcher should trip on: control,
  zero-width and bidi-override characters. Questions and article text pass through it.
- `fold` is the one normalisation under all matching: NFKC (full-width → half-width),
  lower case, and Traditional → Simplified Chinese, character by character so that the
  result has exactly the same length: a position found in folded text is the same
  position in the original.
- `simplified` converts whole texts (phrase-aware, length may change) for the embedding
  model, which sees questions and sentences the same way.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import NamedTuple

__all__ = [
    "BRACKETS", "CLOSING_MARKS", "OPENING_MARKS", "Span", "clean", "fold", "simplified", "sentence_spans", "clause_start", "clause_end",
    "ends_sentence", "is_byline", "is_cjk",
]


class Span(NamedTuple):
    """A half-open range [start, end) of string positions."""

    start: int
    end: int


# Quotation marks and brackets that come in pairs (opening, closing): an answer marks
# both or neither.
BRACKETS = ("《》", "“”", "‘’", "（）", "()", "「」", "『』", "【】")
OPENING_MARKS = "".join(opening for opening, _ in BRACKETS)
CLOSING_MARKS = "".join(closing for _, closing in BRACKETS)

# A sentence ends at 。！？ or an ellipsis, plus any closing quotes or brackets that follow
# it (“……。” belongs to the sentence it closes); a clause also ends at ；. ASCII !?; end
# one only before Chinese text or the end of a line, so "Hey! Say! JUMP" stays whole.
_CLOSERS = CLOSING_MARKS + "\"'"
_AFTER_ASCII = rf"(?=[{re.escape(_CLOSERS)}]*(?:$|\n|[\u4e00-\u9fff“‘「『（(]))"
_SENTENCE_END = re.compile(rf"(?:[。！？]+|…+|\.{{3,}}|[!?]+{_AFTER_ASCII})[{re.escape(_CLOSERS)}]*|\n+")
_CLAUSE_END = re.compile(rf"(?:[。！？；]+|…+|\.{{3,}}|[!?;]+{_AFTER_ASCII})[{re.escape(_CLOSERS)}]*|\n+")

# What a complete paragraph may end with; anything else at the end of a line means
# the sentence continues on the next line (a print-extraction page break).
_PARAGRAPH_FINAL = set("。！？；!?;…：:" + _CLOSERS.replace(")", "").replace("）", ""))


# Zero-width characters, bidi embeddings/overrides/isolates, and the byte order mark.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# Control characters, and lone surrogates (no UTF-8 encoding exists for them; they come
# only from broken input)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def clean(text: str) -> str:
    """`text` without control, zero-width, bidi-override and lone surrogate characters
    (line breaks and tabs kept)."""
    return _CONTROL.sub("", _INVISIBLE.sub("", text))


@lru_cache(maxsize=1)
def _converter():
    import opencc

    return opencc.OpenCC("t2s")


def simplified(text: str) -> str:
    """Traditional Chinese in `text` converted to Simplified, phrase by phrase."""
    return _converter().convert(text)


@lru_cache(maxsize=65536)
def _fold_char(char: str) -> str:
    folded = unicodedata.normalize("NFKC", char).lower()
    # NFKC may expand one character into several (㎡ → m2); keep the original then,
    # so that positions stay aligned.
    folded = folded if len(folded) == 1 else char.lower()
    if is_cjk(folded):
        converted = _converter().convert(folded)
        folded = converted if len(converted) == 1 else folded
    return folded


def fold(text: str) -> str:
    """Case- and width-folded copy of `text` with exactly the same length."""
    return "".join(_fold_char(c) for c in text)


def is_cjk(char: str) -> bool:
    """True for CJK unified ideographs (the characters Chinese words are made of)."""
    code = ord(char)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2FA1F


_BYLINE = re.compile(r"^(?:本报)?(?:通讯员|记者|作者|撰稿|撰文|文/|文／)[\s：:／/]*\S")
_BYLINE_MAX_CHARS = 60


def is_byline(line: str) -> bool:
    """A reporter's credit line (“通讯员 王晓 …”, “本报记者 …”): metadata, not text."""
    return len(line) <= _BYLINE_MAX_CHARS and bool(_BYLINE.match(line))


def ends_sentence(paragraph: str) -> bool:
    """Whether a line of text ends where a sentence may end."""
    stripped = paragraph.rstrip()
    return bool(stripped) and stripped[-1] in _PARAGRAPH_FINAL


def sentence_spans(text: str, *, clauses: bool = True) -> list[Span]:
    """Spans of the sentences in `text` (with `clauses`, ；-separated clauses count as
    sentences), trimmed of surrounding whitespace.

    Together they cover every non-whitespace character of `text` exactly once.
    """
    spans: list[Span] = []
    start = 0
    for match in (_CLAUSE_END if clauses else _SENTENCE_END).finditer(text):
        _append_trimmed(spans, text, start, match.end())
        start = match.end()
    _append_trimmed(spans, text, start, len(text))
    return spans


# Inside a sentence, a clause also ends at a comma or a colon.
_CLAUSE_BREAKS = "，,；;。！？!?：:\n"


def clause_start(text: str, position: int) -> int:
    """Start of the comma-separated clause that holds `position`."""
    while position > 0 and text[position - 1] not in _CLAUSE_BREAKS:
        position -= 1
    return position


def clause_end(text: str, position: int) -> int:
    """End (before its break) of the comma-separated clause that holds `position`."""
    while position < len(text) and text[position] not in _CLAUSE_BREAKS:
        position += 1
    return position


def _append_trimmed(spans: list[Span], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append(Span(start, end))
