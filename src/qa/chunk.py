"""Cut articles into passages: whole paragraphs where possible, never inside a sentence.

Rules, in order:
1. a paragraph up to `max_chars` is one passage;
2. a longer paragraph is packed sentence by sentence into passages of at most
   `max_chars`, each after the first starting with the previous passage's last sentence
   (one sentence of overlap); a single sentence longer than `max_chars` stands alone;
3. a passage shorter than `min_chars` joins its neighbour under the same headings, in the
   same article (a page's articles never share a passage).

Every passage's text is exactly `article.text[start:end]`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NamedTuple

from .ingest import Article
from .text import Span, sentence_spans

__all__ = ["Passage", "chunk_article", "id_number", "id_of_number", "passage_id"]


@dataclass(frozen=True)
class Passage:
    """A retrievable piece of an article with its provenance."""

    id: str
    source: str
    article: str
    headings: tuple[str, ...]
    text: str
    start: int
    end: int

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "source": self.source,
            "article": self.article,
            "headings": list(self.headings),
            "text": self.text,
            "start": self.start,
            "end": self.end,
        }

    @classmethod
    def from_json(cls, data: dict) -> Passage:
        return cls(
            id=data["id"],
            source=data["source"],
            article=data["article"],
            headings=tuple(data["headings"]),
            text=data["text"],
            start=data["start"],
            end=data["end"],
        )


def passage_id(source: str, text: str) -> str:
    """Stable id: a hash of where the passage comes from and what it says (16 hex digits)."""
    return hashlib.sha256(f"{source}\n{text}".encode()).hexdigest()[:16]


def id_number(passage_id: str) -> int:
    """A passage id as the 64-bit number the index stores (qa.segment's ids)."""
    return int(passage_id, 16)


def id_of_number(number: int) -> str:
    return f"{int(number):016x}"


def chunk_article(article: Article, *, max_chars: int = 400, min_chars: int = 60) -> list[Passage]:
    if min_chars >= max_chars:
        raise ValueError(f"min_chars ({min_chars}) must be smaller than max_chars ({max_chars})")
    units: list[tuple[_Section, Span]] = []
    for paragraph in article.paragraphs:
        section = _Section(article.title_of(paragraph), paragraph.headings)
        for span in _split_paragraph(paragraph.text, max_chars):
            units.append((section, Span(paragraph.start + span.start, paragraph.start + span.end)))
    units = _merge_small(units, min_chars=min_chars, max_chars=max_chars)

    passages: list[Passage] = []
    seen: set[str] = set()
    for section, span in units:
        text = article.text[span.start : span.end]
        pid = passage_id(article.source, text)
        if pid in seen:  # the same text twice in one article: index it once
            continue
        seen.add(pid)
        passages.append(Passage(pid, article.source, section.article, section.headings, text, span.start, span.end))
    return passages


class _Section(NamedTuple):
    """Where a paragraph stands: its article (a page's, or the file's) and headings."""

    article: str
    headings: tuple[str, ...]


def _split_paragraph(text: str, max_chars: int) -> list[Span]:
    if len(text) <= max_chars:
        return [Span(0, len(text))]
    sentences = sentence_spans(text)
    pieces: list[Span] = []
    first = 0  # index of the first sentence of the piece being packed
    while first < len(sentences):
        last = first
        while last + 1 < len(sentences) and sentences[last + 1].end - sentences[first].start <= max_chars:
            last += 1
        pieces.append(Span(sentences[first].start, sentences[last].end))
        if last + 1 >= len(sentences):
            break
        # Overlap by one sentence when it leaves room for new text in the next piece.
        overlap_fits = last > first and sentences[last + 1].end - sentences[last].start <= max_chars
        first = last if overlap_fits else last + 1
    return pieces


def _merge_small(units: list[tuple[_Section, Span]], *, min_chars: int, max_chars: int) -> list[tuple[_Section, Span]]:
    merged: list[tuple[_Section, Span]] = []
    for section, span in units:
        if merged:
            previous_section, previous = merged[-1]
            small = (previous.end - previous.start) < min_chars or (span.end - span.start) < min_chars
            if previous_section == section and small and span.end - previous.start <= max_chars:
                merged[-1] = (section, Span(previous.start, span.end))
                continue
        merged.append((section, span))
    return merged
