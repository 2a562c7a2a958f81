from pathlib import Path

import pytest

from qa.ingest import IngestError, parse_article, read_article, read_corpus

from .conftest import SEED


@pytest.fixture(scope="module")
def seed():
    return read_article(SEED)


def paragraph_containing(article, fragment):
    matches = [p for p in article.paragraphs if fragment in p.text]
    assert len(matches) == 1, f"{fragment!r} is in {len(matches)} paragraphs"
    return matches[0]


@pytest.mark.parametrize(
    "before, after",
    [
        ("加之", "天津市16条专项支持政策"),
        ("安擎计算机信息股", "份有限公司"),
        ("“2025中国合成生物", "制造TOP101”"),
        ("协同培育的六", "条重点产业链"),
        ("2025年强势", "收官"),
    ],
)
def test_sentences_broken_across_page_breaks_are_joined(seed, before, after):
    paragraph_containing(seed, before + after)


def test_repeated_fragments_are_indexed_once(seed):
    for fragment in ("份有限公司在2025年产值实现跨越式发展", "生物医药领域同样成果丰硕"):
        paragraph_containing(seed, fragment)
    assert sum("删去重复的片段" in r for r in seed.repairs) == 2


def test_the_seed_page_is_three_articles_with_the_misplaced_heading_put_back(seed):
    assert seed.page == seed.title == "办办同心京津冀"
    assert [(s.title, s.subtitle) for s in seed.stories] == [
        ("抢占“桥头堡” 当好“主力军”", "武清区奋力书写京津冀协同发展时代新篇"),
        ("“链”聚京津冀 “智”造一辆车", None),
        ("京津产业新城：“新产业之城”擘画协同发展新范式", None),
    ]
    # the third article starts after the page's break, and its byline is its own
    assert seed.title_of(paragraph_containing(seed, "春回大地，潮涌新程")) == seed.stories[2].title
    assert seed.title_of(paragraph_containing(seed, "收官，交出一份")) == seed.stories[1].title
    assert seed.stories[2].byline.startswith("通讯员") and seed.stories[0].byline is None
    assert any("移回" in r for r in seed.stories[2].repairs) and all("移回" not in r for r in seed.stories[1].repairs)


def test_heading_path_within_its_article(seed):
    assert paragraph_containing(seed, "22分钟").headings == ("“联通”双城记 惠民暖心的民生答卷",)
    assert all("通讯员" not in p.text for p in seed.paragraphs)


def test_paragraph_offsets_point_into_the_article_text(seed):
    for p in seed.paragraphs:
        assert seed.text[p.start : p.end] == p.text


def test_lines_that_end_a_sentence_stay_separate_paragraphs():
    article = parse_article("第一段。\n第二段！\n\n第三段", source="a.md")
    assert [p.text for p in article.paragraphs] == ["第一段。", "第二段！", "第三段"]
    assert article.title == "a"


def test_lines_are_not_joined_across_headings():
    article = parse_article("# 标题\n\n## 甲\n\n没有句号的一行\n\n## 乙\n\n另一行。", source="a.md")
    assert [p.text for p in article.paragraphs] == ["没有句号的一行", "另一行。"]


def test_windows_line_endings_and_byte_order_mark(tmp_path: Path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeff# 标题\r\n\r\n第一段。\r\n".encode("utf-8"))
    article = read_article(path)
    assert article.title == "标题" and [p.text for p in article.paragraphs] == ["第一段。"]


def test_corpus_skips_what_it_cannot_read_and_says_why(tmp_path: Path):
    (tmp_path / "good.md").write_text("# 好\n\n内容。", encoding="utf-8")
    (tmp_path / "garbled.txt").write_bytes(bytes(range(128, 256)) * 8)
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "empty.md").write_text("# 只有标题\n", encoding="utf-8")
    (tmp_path / ".hidden.md").write_text("隐藏。", encoding="utf-8")
    articles, warnings = read_corpus(tmp_path)
    assert [a.source for a in articles] == ["good.md"]
    assert len(warnings) == 3
    assert any("garbled.txt" in w and "encoding" in w for w in warnings)
    assert any("photo.jpg" in w and "unsupported" in w for w in warnings)
    assert any("empty.md" in w and "no text" in w for w in warnings)


def test_missing_corpus_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(IngestError, match="corpus folder not found"):
        read_corpus(tmp_path / "nope")
