"""Turn the files newsrooms have into markdown-like text plus metadata.

- `.txt` / `.md`: UTF-8, or GB18030/GBK/Big5 … detected by charset-normalizer; a file whose
  encoding cannot be told with confidence is refused rather than indexed as mojibake;
- `.html` / `.htm`: the article body without navigation, asides and footers (trafilatura),
  with its title, date, author and URL;
- `.docx`: paragraphs, with Title/Heading styles as `#` headings (python-docx); running
  headers, footers and page numbers live outside the body and are never read;
- `.pdf`: the text layer (pypdf), with running headers, footers and page numbers removed
  and lines re-assembled into paragraphs; a sentence broken across a page is joined.

`ingest` then parses the text and repairs what print extraction broke.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .errors import IngestError
from .text import ends_sentence, is_byline

__all__ = ["Document", "SUPPORTED_SUFFIXES", "read_document", "decode_text"]

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".docx", ".pdf")

# Decodings with more "chaos" than this (charset-normalizer's mess ratio) are mojibake.
_MAX_CHAOS = 0.15
_PAGE_NUMBER = re.compile(r"^\s*(?:[-—–·]?\s*\d{1,4}\s*[-—–·]?|第\s*\d{1,4}\s*页(?:\s*[/／共]\s*\d+\s*页?)?|\d+\s*/\s*\d+|page\s*\d+)\s*$", re.I)
_HEADING_MAX_CHARS = 40
# A sentence's end; a closing quote alone (“…当好“主力军”) does not end one.
_SENTENCE_FINAL = re.compile(r"[。！？；!?…：:][”’」』）)]*$")


@dataclass(frozen=True)
class Document:
    text: str  # markdown-like: `#` headings, one paragraph or line per line
    title: str | None = None
    date: str | None = None
    author: str | None = None
    url: str | None = None
    notes: tuple[str, ...] = field(default=())  # what the conversion did (encoding, lines removed)


def read_document(path: Path) -> Document:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(f"unsupported file type (supported: {', '.join(SUPPORTED_SUFFIXES)})")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise IngestError(f"cannot read the file ({error.strerror or error})") from None
    if suffix in (".html", ".htm"):
        return _html(data)
    if suffix == ".docx":
        return _docx(data)
    if suffix == ".pdf":
        return _pdf(data)
    text, encoding = decode_text(data)
    return Document(text, notes=(f"decoded as {encoding}",) if encoding != "utf-8" else ())


def decode_text(data: bytes) -> tuple[str, str]:
    """Text of `data` and its encoding: UTF-8 when valid, else the detected one."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.chaos > _MAX_CHAOS:
        guess = f" (best guess {best.encoding}, {best.chaos:.0%} garbled)" if best else ""
        raise IngestError(f"not UTF-8 and the encoding cannot be told reliably{guess}; save the file as UTF-8")
    return str(best), best.encoding


def _html(data: bytes) -> Document:
    import trafilatura

    result = trafilatura.bare_extraction(
        data, with_metadata=True, include_formatting=True, include_comments=False, output_format="python"
    )
    if result is None or not (result.text or "").strip():
        raise IngestError("no article text found in the page")
    text = result.text
    if result.title and not text.lstrip().startswith("# "):
        text = f"# {result.title}\n\n{text}"
    return Document(text, title=result.title, date=result.date, author=result.author, url=result.url)


def _docx(data: bytes) -> Document:
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as error:  # python-docx raises several types for broken packages
        raise IngestError(f"not a readable Word document ({error})") from None
    lines = []
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        level = 1 if style == "Title" else _heading_level(style)
        lines.append(f"{'#' * level} {text}" if level else text)
    properties = document.core_properties
    created = properties.created.date().isoformat() if properties.created else None
    return Document(
        "\n\n".join(lines), title=properties.title or None, date=created, author=properties.author or None
    )


def _heading_level(style: str) -> int:
    match = re.fullmatch(r"Heading (\d)", style)
    return min(int(match.group(1)) + 1, 6) if match else 0


def _pdf(data: bytes) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [(page.extract_text() or "").splitlines() for page in reader.pages]
        info = reader.metadata or {}
    except (PdfReadError, ValueError, KeyError, OSError) as error:
        raise IngestError(f"not a readable PDF ({error})") from None
    if not any(line.strip() for page in pages for line in page):
        raise IngestError("the PDF has no text layer (a scanned image?); OCR it first")
    pages, removed = _strip_running_lines(pages)
    title = _pdf_field(info, "/Title", ignore={"untitled"})
    author = _pdf_field(info, "/Author", ignore={"anonymous"})
    date = None
    created = _pdf_field(info, "/CreationDate")
    if created and re.match(r"D:\d{8}", created):
        date = f"{created[2:6]}-{created[6:8]}-{created[8:10]}"
    notes = (f"removed {removed} running header, footer or page-number lines",) if removed else ()
    return Document(_pdf_paragraphs(pages), title=title, date=date, author=author, notes=notes)


def _pdf_field(info, key: str, *, ignore: set[str] = frozenset()) -> str | None:
    value = info.get(key)
    value = str(value).strip() if value else None
    return value if value and value.lower() not in ignore else None


def _strip_running_lines(pages: list[list[str]]) -> tuple[list[list[tuple[str, bool]]], int]:
    """Drop page numbers and lines that head or foot most pages (digits ignored).

    Returns each page's lines, stripped, with whether the line was indented: Chinese
    typesetting indents the first line of every paragraph.
    """
    def key(line: str) -> str:
        return re.sub(r"\d+", "#", line.strip())

    pages = [[line for line in page if line.strip()] for page in pages]
    running: set[str] = set()
    if len(pages) >= 2:
        edges = Counter(key(line) for page in pages for line in {*page[:2], *page[-2:]})
        running = {k for k, count in edges.items() if count >= max(2, len(pages) / 2)}
    kept, removed = [], 0
    for page in pages:
        lines = []
        for index, line in enumerate(page):
            at_edge = index < 2 or index >= len(page) - 2
            if _PAGE_NUMBER.match(line) or (at_edge and key(line) in running):
                removed += 1
                continue
            lines.append((line.strip(), line[:1] in ("\u3000", " ", "\t")))
        kept.append(lines)
    return kept, removed


def _pdf_paragraphs(pages: list[list[tuple[str, bool]]]) -> str:
    """Re-assemble text-layer lines into paragraphs and headings.

    An indented line starts a paragraph. A line as wide as the page's widest lines
    continues on the next line; so does the last line of a page that does not end a
    sentence. A short line without end punctuation that follows a finished paragraph is a
    heading.
    """
    blocks: list[str] = []
    current = ""
    for page in pages:
        if not page:
            continue
        width = max(len(line) + indented * 2 for line, indented in page)
        for index, (line, indented) in enumerate(page):
            last_on_page = index == len(page) - 1
            if indented and current:
                blocks.append(current)
                current = ""
            starts_block = not current
            if (
                starts_block
                and len(line) <= _HEADING_MAX_CHARS
                and len(line) < 0.8 * width
                and not _SENTENCE_FINAL.search(line)
                and not last_on_page
                and not is_byline(line)
            ):
                blocks.append(f"## {line}")
                continue
            current += line
            full = len(line) + indented * 2 >= 0.95 * width
            if (full or (last_on_page and not ends_sentence(line))) and not (last_on_page and ends_sentence(line)):
                continue  # the paragraph goes on
            blocks.append(current)
            current = ""
    if current:
        blocks.append(current)
    return "\n\n".join(blocks)
