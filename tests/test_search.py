import dataclasses

import pytest

from qa.build import build_index
from qa.search import Retriever
from qa.store import load_snapshot


@pytest.fixture
def retriever(tiny_corpus, settings, hashing_embedder, tokenizer):
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    return Retriever(load_snapshot(settings.index_dir), embedder=hashing_embedder, tokenizer=tokenizer, settings=settings)


def texts(retriever, results):
    return [retriever.snapshot.passages[r.index].text for r in results]


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_each_mode_finds_the_passage_that_shares_the_question_terms(retriever, mode):
    results = retriever.search("湿地公园占地多少亩？", k=2, mode=mode)
    assert "1200亩" in texts(retriever, results)[0]
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)


def test_bm25_returns_only_passages_that_match(retriever):
    assert retriever.search("完全无关的话题", k=4, mode="bm25") == []


def test_hybrid_scores_are_in_unit_range_and_carry_both_parts(retriever):
    results = retriever.search("城际列车到中心站要多久？", k=4)
    assert len(results) == 4
    assert all(0.0 <= r.score <= 1.0 for r in results)
    top = results[0]
    assert "18分钟" in texts(retriever, [top])[0] and top.bm25 > 0 and top.dense > 0


def test_dense_alone_still_answers_when_no_term_matches(retriever):
    results = retriever.search("ＸＹＺ", k=2)
    assert len(results) == 2  # nothing lexical: the dense ranking is used


def test_weight_one_is_bm25_order_and_zero_is_dense_order(retriever):
    question = "公园每天几点开门？"
    lexical_only = dataclasses.replace(retriever._settings, lexical_weight=1.0)
    r = Retriever(retriever.snapshot, embedder=retriever._embedder, tokenizer=retriever._tokenizer, settings=lexical_only)
    assert [x.index for x in r.search(question, k=1)] == [x.index for x in retriever.search(question, k=1, mode="bm25")]


def test_k_larger_than_the_index_returns_everything(retriever):
    assert len(retriever.search("公园", k=50)) == 4


def test_embedder_must_match_the_index(retriever, use_embedder, tokenizer, settings):
    with pytest.raises(ValueError, match="test-hashing"):
        Retriever(retriever.snapshot, embedder=use_embedder, tokenizer=tokenizer, settings=settings)
