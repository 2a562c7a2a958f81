import dataclasses

import pytest

from qa.build import build_index
from qa.config import Settings
from qa.search import Retriever
from qa.store import load_snapshot


@pytest.fixture
def retriever(tiny_corpus, settings, hashing_embedder, tokenizer):
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    return Retriever(load_snapshot(settings.index_dir), embedder=hashing_embedder, tokenizer=tokenizer, settings=settings)


def texts(retriever, results):
    return [p.text for p in retriever.passages(results)]


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


@pytest.mark.parametrize("weight, mode", [(1.0, "bm25"), (0.0, "dense")])
def test_extreme_weights_reduce_to_one_retriever(retriever, settings, hashing_embedder, tokenizer, weight, mode):
    question = "公园每天几点开门？"
    fused = Retriever(
        retriever.index,
        embedder=hashing_embedder,
        tokenizer=tokenizer,
        settings=dataclasses.replace(settings, lexical_weight=weight),
    )
    expected = [x.index for x in retriever.search(question, k=2, mode=mode)]
    assert [x.index for x in fused.search(question, k=2)] == expected


def test_k_larger_than_the_index_returns_everything(retriever):
    assert len(retriever.search("公园", k=50)) == 4


def test_embedder_must_match_the_index(retriever, use_embedder, tokenizer, settings):
    with pytest.raises(ValueError, match="test-hashing"):
        Retriever(retriever.index, embedder=use_embedder, tokenizer=tokenizer, settings=settings)


def test_fusion_is_the_models_own_unless_set():
    from qa.config import FUSION
    from qa.embed import DEFAULT_MODEL, USE_MODEL

    assert Settings().fusion_for(DEFAULT_MODEL) == FUSION[DEFAULT_MODEL]
    # e5's cosines lie in a narrow range: a small difference must count for more
    assert Settings().fusion_for(DEFAULT_MODEL).cosine_scale < Settings().fusion_for(USE_MODEL).cosine_scale
    assert Settings().fusion_for("some/other-model") == FUSION[USE_MODEL]
    assert Settings(lexical_weight=0.9).fusion_for(DEFAULT_MODEL).lexical_weight == 0.9
    assert Settings(cosine_scale=0.3).fusion_for(USE_MODEL).cosine_scale == 0.3
    with pytest.raises(ValueError):
        Settings(lexical_weight=1.5)
    with pytest.raises(ValueError):
        Settings(cosine_scale=0)


def test_a_cosine_far_below_the_best_counts_for_nothing(retriever, hashing_embedder, tokenizer, settings):
    """With a tiny scale only the best dense candidate gets dense credit; BM25 decides the rest."""
    narrow = Retriever(
        retriever.index,
        embedder=hashing_embedder,
        tokenizer=tokenizer,
        settings=dataclasses.replace(settings, lexical_weight=0.5, cosine_scale=1e-6),
    )
    results = narrow.search("公园几点开门？", k=4)
    best_dense = max(results, key=lambda r: r.dense)
    for r in results:
        expected_dense = 1.0 if r is best_dense else 0.0
        assert r.score == pytest.approx(0.5 * r.bm25 / max(x.bm25 for x in results) + 0.5 * expected_dense, abs=1e-5)
