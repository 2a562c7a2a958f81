import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.chunk import chunk_article
from qa.ingest import parse_article, read_article
from qa.text import sentence_spans

from .conftest import SEED


def sentences_of(article):
    """(start, end) of every sentence of the article, in article positions."""
    return {
        (p.start + s.start, p.start + s.end) for p in article.paragraphs for s in sentence_spans(p.text)
    }


def check_invariants(article, passages, max_chars):
    sentences = sentences_of(article)
    starts, ends = {s for s, _ in sentences}, {e for _, e in sentences}
    for passage in passages:
        assert article.text[passage.start : passage.end] == passage.text
        # never cut inside a sentence
        assert passage.start in starts and passage.end in ends
        # bounded, unless one sentence alone is longer than the bound
        inside = [s for s in sentences if passage.start <= s[0] and s[1] <= passage.end]
        assert len(passage.text) <= max_chars or len(inside) == 1
    # every sentence lands in a passage (text repeated in one article is indexed once)
    for start, end in sentences:
        assert any(p.start <= start and end <= p.end for p in passages) or any(
            article.text[start:end] in p.text for p in passages
        )
    # no duplicates
    assert len({p.id for p in passages}) == len({p.text for p in passages}) == len(passages)


def test_seed_passages_are_whole_paragraphs_with_provenance():
    article = read_article(SEED, source="wuqing.md")
    passages = chunk_article(article)
    check_invariants(article, passages, 400)
    paragraph_texts = {p.text for p in article.paragraphs}
    # seed paragraphs are all shorter than the bound: each is whole in some passage
    assert all(any(t in p.text for p in passages) for t in paragraph_texts)
    # the page's three articles, each passage in one of them
    assert {p.article for p in passages} == {story.title for story in article.stories} and len(article.stories) == 3
    assert all(p.source == "wuqing.md" for p in passages)


def test_long_paragraph_is_split_at_sentence_ends_with_one_sentence_of_overlap():
    sentences = [f"第{i}句话讲了一件事情，内容比较长一些。" for i in range(30)]
    article = parse_article("".join(sentences), source="long.md")
    passages = chunk_article(article, max_chars=100, min_chars=20)
    check_invariants(article, passages, 100)
    assert len(passages) > 1
    for first, second in zip(passages, passages[1:]):
        last_sentence = first.text[sentence_spans(first.text)[-1].start :]
        assert second.text.startswith(last_sentence)


def test_sentence_longer_than_the_bound_stands_alone():
    article = parse_article("短句。" + "很" * 50 + "长的句子。" + "又一句。", source="a.md")
    passages = chunk_article(article, max_chars=20, min_chars=2)
    check_invariants(article, passages, 20)
    assert any(p.text == "很" * 50 + "长的句子。" for p in passages)


def test_tiny_fragments_join_their_neighbour_under_the_same_heading():
    article = parse_article("## 甲\n\n短。\n\n这是一个足够长的段落，讲述了很多内容。\n\n## 乙\n\n另一节。", source="a.md")
    passages = chunk_article(article, max_chars=200, min_chars=10)
    assert [p.text for p in passages] == ["短。\n\n这是一个足够长的段落，讲述了很多内容。", "另一节。"]
    assert [p.headings for p in passages] == [("甲",), ("乙",)]


def test_ids_are_stable_and_depend_on_source_and_text():
    article = parse_article("内容一。\n\n内容二。", source="a.md")
    assert [p.id for p in chunk_article(article)] == [p.id for p in chunk_article(article)]
    other = parse_article("内容一。\n\n内容二。", source="b.md")
    assert chunk_article(article)[0].id != chunk_article(other)[0].id


def test_bounds_are_validated():
    with pytest.raises(ValueError, match="min_chars"):
        chunk_article(parse_article("内容。", source="a.md"), max_chars=10, min_chars=10)


paragraph = st.lists(
    st.text(alphabet="武清京津冀协同发展产业12.%，、“”", min_size=1, max_size=40).map(lambda s: s + "。"),
    min_size=1,
    max_size=12,
).map("".join)


@settings(max_examples=150, deadline=None)
@given(st.lists(paragraph, min_size=1, max_size=6), st.integers(20, 200))
def test_invariants_hold_for_any_article(paragraphs, max_chars):
    article = parse_article("\n\n".join(paragraphs), source="a.md")
    check_invariants(article, chunk_article(article, max_chars=max_chars, min_chars=10), max_chars)
