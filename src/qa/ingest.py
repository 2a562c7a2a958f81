"""Read news articles from the corpus folder and repair print-extraction damage.

`formats` turns each file (text in any common encoding, HTML, Word, PDF) into
markdown-like text: `#` lines are headings, other non-blank lines are paragraphs. Text
extracted from printed pages carries scars that are repaired here:

- a sentence broken across a page or column break arrives as two lines; a line that does
  not end where a sentence can end is joined with the next line of the same section;
- a paragraph or fragment printed twice is kept once (a later paragraph contained in an
  earlier one is dropped);
- a heading left with no text of its own (for example one followed only by a repeated
  fragment) produces nothing;
- a byline ("通讯员 …", "记者 …") is article metadata, not a paragraph;
- every repair is recorded, in Chinese (editors read them in the 资料库 tab);
- a file holding a newspaper page is split into its articles, and a heading printed
  after its own article's body is put back at its start (`qa.pages`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .errors import IngestError
from .formats import SUPPORTED_SUFFIXES, read_document
from .pages import Encode, Line, dropped_repeat, duplicate_key, repeats, split_page
from .text import clean, ends_sentence, is_byline

__all__ = ["Article", "Paragraph", "Story", "IngestError", "SUPPORTED_SUFFIXES", "parse_article", "read_article", "read_corpus", "corpus_files", "CorpusFile"]

log = logging.getLogger(__name__)

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Paragraph:
    """A repaired paragraph and where it sits in the article text."""

    text: str
    headings: tuple[str, ...]
    start: int
    end: int
    story: int = 0  # which of a page's articles it belongs to (`Article.stories`)


@dataclass(frozen=True)
class Story:
    """One article of a newspaper page."""

    title: str
    subtitle: str | None = None
    byline: str | None = None
    repairs: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"title": self.title, "subtitle": self.subtitle, "byline": self.byline, "repairs": list(self.repairs)}

    @classmethod
    def from_json(cls, data: dict) -> Story:
        return cls(data["title"], data["subtitle"], data["byline"], tuple(data["repairs"]))


@dataclass(frozen=True)
class Article:
    """One news article after repair.

    `text` is the repaired paragraphs joined by blank lines; paragraph and passage
    offsets are positions in it. A file holding a newspaper page is one `Article` whose
    `stories` are the page's articles (`title` and `page` are the page's name); a file
    holding one article has no stories.
    """

    source: str
    title: str
    text: str
    paragraphs: tuple[Paragraph, ...]
    sha256: str
    byline: str | None = None
    date: str | None = None
    author: str | None = None
    url: str | None = None
    repairs: tuple[str, ...] = field(default=())
    page: str | None = None
    stories: tuple[Story, ...] = ()

    @property
    def article_count(self) -> int:
        """The articles the file holds: a page's stories, else one."""
        return len(self.stories) or 1

    def title_of(self, paragraph: Paragraph) -> str:
        """The title of the article a paragraph belongs to."""
        return self.stories[paragraph.story].title if self.stories else self.title


@dataclass
class _Block:
    text: str
    headings: tuple[str, ...]


class CorpusFile(NamedTuple):
    source: str  # the path inside the corpus folder, with "/" separators
    path: str  # a plain string: a Path per file costs seconds over an archive


def corpus_files(corpus_dir: Path) -> list[CorpusFile]:
    """Every file under `corpus_dir` except hidden ones (editor swap files, .git), in
    source order. Plain `os.walk` and strings: a newsroom archive holds 100,000 files, and
    pathlib's per-file objects took 4 s to list them."""
    if not corpus_dir.is_dir():
        raise IngestError(f"corpus folder not found: {corpus_dir}")
    found: list[CorpusFile] = []
    top = str(corpus_dir).rstrip(os.sep)
    for root, folders, files in os.walk(top):
        folders[:] = [f for f in folders if not f.startswith(".")]
        prefix = root[len(top) + 1 :].replace(os.sep, "/")
        prefix = prefix + "/" if prefix else ""
        found.extend(CorpusFile(prefix + name, root + os.sep + name) for name in files if not name.startswith("."))
    found.sort()
    return found


def read_corpus(corpus_dir: Path) -> tuple[list[Article], list[str]]:
    """Articles of every supported file under `corpus_dir`, in path order.

    Returns the articles and one warning per file that was skipped, naming it and why.
    """
    articles: list[Article] = []
    warnings: list[str] = []
    for relative, path in corpus_files(corpus_dir):
        try:
            articles.append(read_article(Path(path), source=relative))
        except IngestError as error:
            warnings.append(f"skipped {relative}: {error}")
    for warning in warnings:
        log.warning(warning)
    return articles, warnings


def read_article(path: Path, *, source: str | None = None, encode: Encode | None = None) -> Article:
    """Read, convert and repair one article file; IngestError says why it cannot be.
    `encode` (passage vectors) lets a page's misplaced heading be placed by topic (qa.pages)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise IngestError(f"cannot read the file ({error.strerror or error})") from None
    document = read_document(path)
    article = parse_article(
        document.text,
        source=source or path.name,
        sha256=hashlib.sha256(data).hexdigest(),
        title=document.title,
        date=document.date,
        author=document.author,
        url=document.url,
        encode=encode,
    )
    if not article.paragraphs:
        raise IngestError("no text")
    return article


def parse_article(
    raw: str,
    *,
    source: str,
    sha256: str | None = None,
    title: str | None = None,
    date: str | None = None,
    author: str | None = None,
    url: str | None = None,
    encode: Encode | None = None,
) -> Article:
    """Parse markdown-like article text into a repaired `Article`.

    `title` (from the file's metadata) is used when the text has no `#` title of its own;
    `encode` as in `read_article`.
    """
    if sha256 is None:
        sha256 = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    lines = _lines(clean(raw))
    seen: list[str] = []  # every paragraph kept so far, as duplicate keys
    page = split_page(lines, encode)
    if page is None:
        heading_title, blocks, bylines, repairs = _repaired(lines, seen)
        parts = [blocks]
        stories: tuple[Story, ...] = ()
        byline = " ".join(bylines) or None
        page_name = None
    else:
        page_name, page_articles, notes = page
        parts, story_list, repairs = [], [], list(notes)
        for page_article in page_articles:
            _, blocks, bylines, story_repairs = _repaired(page_article.lines, seen)
            story_repairs = page_article.repairs + story_repairs
            parts.append(blocks)
            story_list.append(Story(page_article.title, page_article.subtitle, " ".join(bylines) or None, tuple(story_repairs)))
            repairs += story_repairs
        stories, byline, heading_title = tuple(story_list), None, page_name

    paragraphs: list[Paragraph] = []
    position = 0
    for story, blocks in enumerate(parts):
        for block in blocks:
            if paragraphs:
                position += 2  # the blank line between paragraphs
            paragraphs.append(Paragraph(block.text, block.headings, position, position + len(block.text), story))
            position += len(block.text)
    text = "\n\n".join(p.text for p in paragraphs)

    return Article(
        source=source,
        title=heading_title or title or Path(source).stem,
        text=text,
        paragraphs=tuple(paragraphs),
        sha256=sha256,
        byline=byline,
        date=date,
        author=author,
        url=url,
        repairs=tuple(repairs),
        page=page_name,
        stories=stories,
    )


def _lines(raw: str) -> list[Line]:
    """The non-blank lines, headings with their level, each marked when a run of blank
    lines stands before it."""
    lines: list[Line] = []
    blank = 0
    for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.strip().replace("\u3000", " ").strip()
        if not line:
            blank += 1
            continue
        heading = _HEADING.match(line)
        if heading:
            lines.append(Line(heading.group(2), len(heading.group(1)), blank >= 2))
        else:
            lines.append(Line(line, None, blank >= 2))
        blank = 0
    return lines


def _repaired(lines: list[Line], seen: list[str]) -> tuple[str | None, list[_Block], list[str], list[str]]:
    """Title, repaired paragraph blocks, bylines and the repairs made, of one article's lines;
    `seen` holds the paragraphs kept before (a page's earlier articles)."""
    heading_title, blocks, bylines, headings = _blocks(lines)
    repairs: list[str] = []
    blocks = _join_broken_lines(blocks, repairs)
    blocks = _drop_duplicates(blocks, repairs, seen)
    used = {heading for block in blocks for heading in block.headings}
    repairs.extend(f"删去没有正文的标题“{heading}”" for heading in headings if heading not in used)
    return heading_title, blocks, bylines, repairs


def _blocks(lines: list[Line]) -> tuple[str | None, list[_Block], list[str], list[str]]:
    """Title, paragraph lines with their heading path, bylines, and every heading."""
    title: str | None = None
    headings: list[str] = []
    stack: list[tuple[int, str]] = []
    blocks: list[_Block] = []
    bylines: list[str] = []
    for line in lines:
        if line.level is not None:
            if line.level == 1 and title is None and not blocks:
                title = line.text
                continue
            while stack and stack[-1][0] >= line.level:
                stack.pop()
            stack.append((line.level, line.text))
            headings.append(line.text)
            continue
        if is_byline(line.text):
            bylines.append(line.text)
            continue
        blocks.append(_Block(line.text, tuple(text for _, text in stack)))
    return title, blocks, bylines, headings


def _join_broken_lines(blocks: list[_Block], repairs: list[str]) -> list[_Block]:
    joined: list[_Block] = []
    for block in blocks:
        previous = joined[-1] if joined else None
        if previous and previous.headings == block.headings and not ends_sentence(previous.text):
            repairs.append(f"接上在“{previous.text[-8:]}”处断开的句子")
            previous.text += block.text
        else:
            joined.append(_Block(block.text, block.headings))
    return joined


def _drop_duplicates(blocks: list[_Block], repairs: list[str], seen: list[str]) -> list[_Block]:
    kept: list[_Block] = []
    for block in blocks:
        key = duplicate_key(block.text)
        if any(repeats(key, earlier) for earlier in seen):
            repairs.append(dropped_repeat(block.text))
            continue
        kept.append(block)
        seen.append(key)
    return kept
