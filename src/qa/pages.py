"""A newspaper page is several articles: find them, and put a misplaced heading back.

A file is read as a page when, below an optional page name (a level-1 heading before any
text), the text starts right at a heading, headings of that level (the article level)
occur at least twice, and the file shows the structure of a page: a byline, or headings
below the article level (subtitles, sections). A file of one article with sections
(“# 标题”, its lead, then “## 一、…”) has text under its title and stays one article.

Each article heading opens an article; a heading of the next level standing alone right
after it is the article's subtitle.

A heading printed out of place (an article heading followed by no new text, only by a
fragment already printed earlier) belongs to the body holding that fragment. Its article
starts where the page's text breaks before the fragment (a run of blank lines) and runs to
the end of that body. Without a break, it starts where the topic changes: the neighbouring
paragraphs least alike in meaning, when they stand out clearly from the body's other
neighbours (`topic_boundary`). Without either, the evidence is too weak: the heading is
kept as a note in the repairs and nothing moves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .text import fold, is_byline

__all__ = ["Line", "PageArticle", "Encode", "split_page", "topic_boundary", "TOPIC_MARGIN", "duplicate_key", "repeats", "dropped_repeat"]

# Passage vectors of texts, one row each (an embedder's encode_passages).
Encode = Callable[[Sequence[str]], np.ndarray]

# Fragments shorter than this are too common to call duplicates ("未来已来。").
_DUPLICATE_MIN_CHARS = 12

# How far a topic boundary's similarity must lie below the median of the body's other
# neighbouring pairs (cosines of vectors centred on the body's mean). Chosen on bodies
# composed from DRCD dev articles, where it split no single article (1.5% of test's):
# `python scripts/eval_page_split.py` measures it.
TOPIC_MARGIN = 0.5


@dataclass(frozen=True)
class Line:
    """A non-blank line of a file as ingest reads it."""

    text: str
    level: int | None = None  # a heading's level; None for text
    gap_before: bool = False  # two or more blank lines before it: the page's text breaks here


@dataclass
class PageArticle:
    """One article of a page: its title, subtitle and the lines below them."""

    title: str
    subtitle: str | None
    lines: list[Line]
    repairs: list[str] = field(default_factory=list)


def duplicate_key(text: str) -> str:
    return "".join(fold(text).split())


def repeats(key: str, earlier: str) -> bool:
    """Whether a line (as its `duplicate_key`) repeats an earlier one: the same text, or a
    fragment of it long enough not to be a common phrase."""
    return key == earlier or (len(key) >= _DUPLICATE_MIN_CHARS and key in earlier)


def dropped_repeat(text: str) -> str:
    """The repair recorded for a repeated line that was dropped."""
    return f"删去重复的片段“{text[:12]}…”"


def split_page(
    lines: list[Line], encode: Encode | None = None
) -> tuple[str | None, list[PageArticle], list[str]] | None:
    """The page name, the page's articles and notes on the page as a whole (a heading kept
    as a note with no article before it), or None when the lines are one article.

    `encode` lets a misplaced heading's article be found by a change of topic where the
    page's text does not break; without it, such a heading stays a note."""
    page = None
    if lines and lines[0].level == 1:
        page, lines = lines[0].text, lines[1:]
    levels = [line.level for line in lines if line.level is not None]
    if not lines or lines[0].level is None or not levels:
        return None
    level = min(levels)
    starts = [i for i, line in enumerate(lines) if line.level == level]
    deeper = any(other > level for other in levels)
    bylines = any(line.level is None and is_byline(line.text) for line in lines)
    if lines[0].level != level or len(starts) < 2 or not (deeper or bylines):
        return None
    articles = [
        _article(lines[start:end], level) for start, end in zip(starts, [*starts[1:], len(lines)])
    ]
    notes: list[str] = []
    return page, _place_misplaced(articles, notes, encode), notes


def _article(lines: list[Line], level: int) -> PageArticle:
    title, body = lines[0].text, lines[1:]
    subtitle = None
    if body and body[0].level == level + 1 and sum(line.level == level + 1 for line in body) == 1:
        subtitle, body = body[0].text, body[1:]
    return PageArticle(title, subtitle, body)


def _texts(article: PageArticle) -> list[int]:
    return [i for i, line in enumerate(article.lines) if line.level is None and not is_byline(line.text)]


def _place_misplaced(articles: list[PageArticle], notes: list[str], encode: Encode | None) -> list[PageArticle]:
    placed: list[PageArticle] = []
    seen: list[str] = []  # every text line so far, as duplicate keys
    for article in articles:
        texts = [article.lines[i].text for i in _texts(article)]
        keys = [duplicate_key(text) for text in texts]
        repeated = [key for key in keys if any(repeats(key, earlier) for earlier in seen)]
        if len(repeated) < len(keys):  # new text of its own: an article in place
            placed.append(article)
            seen += keys
            continue
        dropped = [dropped_repeat(text) for text in texts]
        if not repeated:
            _note(placed, notes, f"标题“{article.title}”没有自己的正文，也没有重复的正文说明它属于哪里，仅作备注")
            continue
        owner, line = _home(placed, repeated[0])
        host = placed[owner]
        start, found_by = _article_start(host, line, encode)
        if start is None:
            _note(placed, notes, f"标题“{article.title}”印在它重复的正文之后，但在那之前版面没有断开处，话题也没有明显的转换处，无法确定文章从哪里开始，仅作备注")
            _note(placed, notes, *dropped)
            continue
        moved = PageArticle(article.title, article.subtitle, host.lines[start:], dropped)
        host.lines = host.lines[:start]
        moved.repairs.append(
            f"标题“{article.title}”印在正文之后，已移回它的文章开头（“{moved.lines[0].text[:12]}…”，{found_by}）"
        )
        placed.insert(owner + 1, moved)
    return placed


def _article_start(host: PageArticle, line: int, encode: Encode | None) -> tuple[int | None, str]:
    """Where the article whose text `host` printed at `line` starts: the last break in the
    page's text before it, else a clear change of topic; and how it was found."""
    texts = _texts(host)
    breaks = [i for i in range(texts[0] + 1, line + 1) if host.lines[i].gap_before]
    if breaks:
        return breaks[-1], "按版面断开处"
    candidates = [k for k, i in enumerate(texts) if 0 < k and i <= line]
    if encode is None or len(texts) < 3 or not candidates:  # a margin needs other pairs to compare with
        return None, ""
    boundary, margin = topic_boundary(encode([host.lines[i].text for i in texts]), candidates)
    return (texts[boundary], "按话题转换处") if margin >= TOPIC_MARGIN else (None, "")


def topic_boundary(vectors: np.ndarray, candidates: Sequence[int]) -> tuple[int, float]:
    """Of the `candidates` (row k: a boundary between paragraphs k-1 and k), the one whose
    neighbours are least alike, and by how much they are less alike than the median of the
    other neighbouring pairs. Vectors are centred on their mean first: every paragraph of a
    page shares its subject, and the raw cosines of one page all lie close together."""
    centred = vectors - vectors.mean(axis=0)
    centred /= np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)
    neighbours = np.einsum("ij,ij->i", centred[:-1], centred[1:])  # [k-1]: rows k-1 and k
    boundary = min(candidates, key=lambda k: neighbours[k - 1])
    others = np.delete(neighbours, boundary - 1)
    return boundary, float(np.median(others) - neighbours[boundary - 1])


def _home(placed: list[PageArticle], key: str) -> tuple[int, int]:
    """The article and line where a repeated line was first printed."""
    for number, article in enumerate(placed):
        for i in _texts(article):
            if repeats(key, duplicate_key(article.lines[i].text)):
                return number, i
    raise ValueError("a repeated line was printed before")  # `seen` holds only placed lines


def _note(placed: list[PageArticle], notes: list[str], *repairs: str) -> None:
    (placed[-1].repairs if placed else notes).extend(repairs)
