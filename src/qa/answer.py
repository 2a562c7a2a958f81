"""Find where in a passage the answer is: the best sentence, and the question's terms.

The sentence that covers most of the question's weighted terms (words and character
n-grams, longer ones weighing more) is taken as the answer sentence; its coverage is the
confidence. Question words (什么, 多少 …) carry no weight.
"""

from __future__ import annotations

from dataclasses import dataclass

from .text import Span, fold, sentence_spans

__all__ = ["Answer", "Highlight", "find_answer", "term_highlights"]


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


@dataclass(frozen=True)
class Highlight:
    start: int
    end: int
    kind: str = "term"

    def to_json(self) -> dict:
        return {"start": self.start, "end": self.end, "kind": self.kind}


def find_answer(query_tokens: list[str], text: str) -> Answer | None:
    """The sentence of `text` that covers most of the query, or None if none covers any."""
    weights = {token.lstrip("#"): len(token.lstrip("#")) for token in query_tokens}
    total = sum(weights.values())
    if not total:
        return None
    folded = fold(text)
    best: tuple[float, Span] | None = None
    for span in sentence_spans(text):
        sentence = folded[span.start : span.end]
        covered = sum(weight for term, weight in weights.items() if term in sentence)
        if covered and (best is None or covered > best[0]):
            best = (covered, span)
    if best is None:
        return None
    covered, span = best
    return Answer(text[span.start : span.end], span.start, span.end, covered / total, span)


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
