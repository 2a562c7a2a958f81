"""Each file format yields the article's text: fixtures are made here from the seed."""

import re

import pytest

from qa.chunk import chunk_article
from qa.errors import IngestError
from qa.formats import decode_text, read_document
from qa.ingest import read_article

from .conftest import SEED

SEED_TEXT = SEED.read_text(encoding="utf-8")


def passage_texts(path):
    return [p.text for p in chunk_article(read_article(path))]


@pytest.fixture(scope="module")
def seed_passages():
    return passage_texts(SEED)


def seed_lines():
    """(heading level or 0, text) for each non-blank line of the seed."""
    for line in SEED_TEXT.splitlines():
        if line.strip():
            match = re.match(r"^(#+)\s+(.*)$", line)
            yield (len(match.group(1)), match.group(2)) if match else (0, line.strip())


def test_gb18030_copy_yields_exactly_the_passages_of_the_utf8_original(tmp_path, seed_passages):
    copy = tmp_path / "seed-gb18030.md"
    copy.write_bytes(SEED_TEXT.encode("gb18030"))
    assert passage_texts(copy) == seed_passages
    assert read_document(copy).notes == ("decoded as gb18030",)


def test_big5_is_detected():
    text = "武清區正在全面落實規劃，坐上京津城際22分鐘就能到北京南站。新聞報導指出，交通越來越方便。"
    assert decode_text(text.encode("big5")) == (text, "big5")


def test_bytes_that_no_encoding_explains_are_refused_not_indexed_as_mojibake(tmp_path):
    path = tmp_path / "garbled.txt"
    path.write_bytes(bytes(range(128, 256)) * 8)
    with pytest.raises(IngestError, match="encoding"):
        read_article(path)


def test_html_page_yields_the_article_without_navigation_or_footer(tmp_path, seed_passages):
    body = []
    for level, text in seed_lines():
        body.append(f"<h{min(level, 6)}>{text}</h{min(level, 6)}>" if level else f"<p>{text}</p>")
    page = (
        "<html><head><meta charset='utf-8'><title>办办同心京津冀 - 天津日报</title>"
        "<meta property='article:published_time' content='2026-03-01'></head><body>"
        "<header><nav><ul><li><a href='/'>首页</a></li><li><a href='/n'>要闻导航</a></li></ul></nav></header>"
        f"<main><article>{''.join(body)}</article></main>"
        "<aside><h3>相关阅读</h3><ul><li><a href='/x'>另一条新闻链接</a></li></ul></aside>"
        "<footer><p>版权所有 © 天津日报社 联系我们 京ICP备00000000号</p></footer></body></html>"
    )
    path = tmp_path / "page.html"
    path.write_text(page, encoding="utf-8")
    article = read_article(path)
    text = article.text
    for boilerplate in ("首页", "要闻导航", "相关阅读", "另一条新闻链接", "版权所有", "ICP"):
        assert boilerplate not in text
    assert article.title == "办办同心京津冀" and article.date == "2026-03-01"
    joined = "".join(seed_passages)
    for passage in chunk_article(article):
        assert passage.text.replace("\n\n", "") in joined.replace("\n\n", "")
    assert "22分钟就能到北京南站" in text and "郎聪" in text


def test_docx_copy_yields_the_same_passages(tmp_path, seed_passages):
    docx = pytest.importorskip("docx")
    document = docx.Document()
    for level, text in seed_lines():
        if level == 1:
            document.add_paragraph(text, style="Title")
        elif level:
            document.add_heading(text, level=level - 1)
        else:
            document.add_paragraph(text)
    section = document.sections[0]
    section.header.paragraphs[0].text = "天津日报 第5版"  # running header: not body text
    document.core_properties.author = "天津日报"
    path = tmp_path / "seed.docx"
    document.save(path)
    article = read_article(path)
    assert [p.text for p in chunk_article(article)] == seed_passages
    assert article.title == "办办同心京津冀" and article.author == "天津日报"
    assert "第5版" not in article.text


def make_pdf(path, lines, *, width=30, lines_per_page=34):
    """A PDF of `lines` wrapped at `width` characters, typeset as Chinese print is (the
    first line of each paragraph indented by two full-width spaces), with a running header
    and page numbers."""
    canvas_module = pytest.importorskip("reportlab.pdfgen.canvas")
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    wrapped = []
    for level, text in lines:
        text = text if level else "\u3000\u3000" + text
        wrapped.extend(text[i : i + width] for i in range(0, len(text), width))
    canvas = canvas_module.Canvas(str(path))
    for number, start in enumerate(range(0, len(wrapped), lines_per_page), 1):
        canvas.setFont("STSong-Light", 11)
        canvas.drawString(60, 800, "天津日报 2026年3月1日 第5版")
        for row, line in enumerate(wrapped[start : start + lines_per_page]):
            canvas.drawString(60, 770 - row * 20, line)
        canvas.drawString(290, 40, f"- {number} -")
        canvas.showPage()
    canvas.save()


def test_pdf_copy_yields_the_same_passages_without_headers_footers_or_page_numbers(tmp_path, seed_passages):
    path = tmp_path / "seed.pdf"
    make_pdf(path, list(seed_lines()))
    document = read_document(path)
    assert "第5版" not in document.text and not re.search(r"^- \d+ -$", document.text, re.M)
    assert document.notes and "removed" in document.notes[0]
    assert passage_texts(path) == seed_passages


def test_pdf_sentence_broken_across_pages_is_joined(tmp_path):
    first = "甲" * 29 + "。"
    lines = [(0, first)] * 33 + [(0, "京津汽车产业园2025年强势收官，交出一份成绩单。")]
    path = tmp_path / "break.pdf"
    make_pdf(path, lines, lines_per_page=34)  # the last sentence wraps onto page 2
    text = read_document(path).text
    assert "京津汽车产业园2025年强势收官，交出一份成绩单。" in text


def test_unsupported_and_broken_files_are_explained(tmp_path):
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4 not really")
    (tmp_path / "a.docx").write_bytes(b"PK not a zip")
    (tmp_path / "a.xls").write_bytes(b"x")
    for name, message in (("a.pdf", "PDF"), ("a.docx", "Word"), ("a.xls", "unsupported")):
        with pytest.raises(IngestError, match=message):
            read_document(tmp_path / name)
