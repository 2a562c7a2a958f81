"""Example questions drawn from the indexed articles themselves.

A clause that states a figure becomes a question by putting 多少 where the number was
(“京津城际武清站每日停靠车次增至最高70列” → “…增至最高多少列？”), so every example is
answerable from the corpus. Examples come from passages spread across the index.
"""

from __future__ import annotations

import re

from .backend import PassageIndex
from .candidates import extract_candidates
from .text import sentence_spans
from .tokens import Tokenizer

__all__ = ["example_questions"]

_NUMBER = re.compile(r"^[\d.,，零〇一二两三四五六七八九十百千余多]+")
_LEADING = re.compile(r"^(?:如今|目前|其中|同时|此外|今年|去年|近年来|当前|在此基础上|加之|随着)[，,]?")
_CLAUSE = re.compile(r"[^，,。！？；：]+")


def example_questions(index: PassageIndex, tokenizer: Tokenizer, count: int = 4) -> list[str]:
    found: list[str] = []
    for passage in index.sample_passages(count * 3):
        question = _question_from(passage.text, tokenizer)
        if question and question not in found:
            found.append(question)
        if len(found) == count:
            break
    return found


def _question_from(text: str, tokenizer: Tokenizer) -> str | None:
    for span in sentence_spans(text):
        sentence = text[span.start : span.end]
        for candidate in extract_candidates(sentence, tokenizer):
            if candidate.kind != "quantity":
                continue
            figure = sentence[candidate.start : candidate.end]
            unit = _NUMBER.sub("", figure)
            # Arabic figures only: Chinese numerals are often idioms (新一年, 一企带一链).
            if not unit or unit == figure or not re.search(r"\d", figure):
                continue
            clause = next(
                (m for m in _CLAUSE.finditer(sentence) if m.start() <= candidate.start and candidate.end <= m.end()), None
            )
            if clause is None:
                continue
            before = sentence[clause.start() : candidate.start]
            after = sentence[candidate.end : clause.end()]
            question = _LEADING.sub("", (before + "多少" + unit + after).strip())
            if 8 <= len(question) <= 36 and not question.startswith("多少") and not re.search(r"\d", before + after):
                return question + "？"
    return None
