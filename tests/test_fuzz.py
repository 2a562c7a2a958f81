"""Property-based tests over arbitrary Unicode: nothing raises, every offset is inside its text."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.assistant import Assistant
from qa.build import build_index
from qa.factcheck import FactChecker
from qa.text import clean, fold

# Random Unicode, plus the characters that tend to break Chinese text handling.
TRICKY = st.sampled_from(list("武清站？！。，“”《》\u200b\u200e\u202e\u2066\ufeff\x00\x07\r\n\t 　ＡＢ１２😀🇨🇳ﬁ㎡Ⅻ乾隆從") + ["<script>", "-", "--help", "\ud800", "\udfff"])
TEXT = st.lists(st.one_of(st.characters(), TRICKY), max_size=60).map("".join)
INVISIBLE = "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff"


@given(TEXT)
def test_clean_removes_invisible_and_control_characters_and_is_idempotent(text):
    cleaned = clean(text)
    assert clean(cleaned) == cleaned
    assert not any(c in INVISIBLE for c in cleaned)
    assert all(c in "\n\r\t" or not (ord(c) < 32 or 0x7F <= ord(c) <= 0x9F) for c in cleaned)
    cleaned.encode("utf-8")  # no lone surrogate left


@given(TEXT)
def test_fold_keeps_every_position_and_is_idempotent(text):
    folded = fold(text)
    assert len(folded) == len(text) and fold(folded) == folded


@pytest.fixture(scope="module")
def assistant(tmp_path_factory, tokenizer):
    from .conftest import HashingEmbedder
    from qa.config import Settings

    corpus = tmp_path_factory.mktemp("corpus")
    (corpus / "rail.md").write_text("# 城际\n\n新城际铁路今天开通。从新城站到中心站只要18分钟。\n\n车站每天停靠列车40列。", encoding="utf-8")
    (corpus / "park.md").write_text("# 公园\n\n南湖湿地公园占地1200亩。园内有三条步道，每天早上六点开门。", encoding="utf-8")
    settings = Settings(index_dir=tmp_path_factory.mktemp("index"), corpus_dir=corpus, model=HashingEmbedder.name, min_passage_chars=5)
    embedder = HashingEmbedder()
    build_index(settings, embedder=embedder, tokenizer=tokenizer)
    return Assistant(settings, embedder=embedder, tokenizer=tokenizer)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=TEXT)
def test_any_question_gets_a_valid_response(assistant, question):
    response = assistant.ask(question)
    json.dumps(response.to_json(), ensure_ascii=False)
    assert len(response.query) <= 500
    if not response.hits:
        assert response.no_answer and response.message
    for hit in response.hits:
        text = hit.passage.text
        if hit.answer:
            assert text[hit.answer.start : hit.answer.end] == hit.answer.text
            assert 0 <= hit.answer.sentence.start <= hit.answer.start < hit.answer.end <= hit.answer.sentence.end <= len(text)
        assert all(0 <= h.start < h.end <= len(text) for h in hit.highlights)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(claim=TEXT)
def test_any_statement_gets_a_valid_check(assistant, claim):
    result = FactChecker(assistant).check(claim)
    json.dumps(result.to_json(), ensure_ascii=False)
    assert result.verdict in ("supported", "contradicted", "not_found")
    for fact in result.facts:
        if fact.evidence:
            e = fact.evidence
            assert e.passage.text[e.start : e.end] == e.value
