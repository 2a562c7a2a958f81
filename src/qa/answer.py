"""Where an answer sits in a passage (`Answer`), and where the question's terms do."""

from __future__ import annotations

from dataclasses import dataclass

from .text import Span, fold

__all__ = ["Answer", "Highlight", "confidence_words", "term_highlights"]


@dataclass(frozen=True)
class Answer:
    text: str
    start: int
    end: int
    confidence: float
    sentence: Span

    def to_json(self) -> dict:
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "confidence": round(self.confidence, 4),
            "sentence": {"start": self.sentence.start, "end": self.sentence.end},
        }


def confidence_words(confidence: float) -> str:
    """How sure, in words: the confidence is calibrated (docs/reader.md, reliability table),
    so 把握较高 answers are right about seven times in ten or more."""
    if confidence >= 0.7:
        return "把握较高"
    if confidence >= 0.4:
        return "把握一般"
    return "把握较低"


@dataclass(frozen=True)
class Highlight:
    start: int
    end: int
    kind: str = "term"

    def to_json(self) -> dict:
        return {"start": self.start, "end": self.end, "kind": self.kind}


def term_highlights(terms: list[str], text: str) -> list[Highlight]:
    """Non-overlapping occurrences of `terms` in `text`, longer terms first, in text order."""
    folded = fold(text)
    taken = [False] * len(text)
    found: list[Highlight] = []
    for term in sorted(set(terms), key=len, reverse=True):
        if not term:
            continue
        start = folded.find(term)
        while start != -1:
            end = start + len(term)
            if not any(taken[start:end]):
                taken[start:end] = [True] * len(term)
                found.append(Highlight(start, end))
            start = folded.find(term, end)
    return sorted(found, key=lambda h: h.start)
