"""BM25 over segments: bm25s's scores, global statistics however the index is split."""

import bm25s
import numpy as np
import pytest

from qa.backend import top_positions
from qa.lexical import Bm25, Postings, term_hashes
from qa.manifest import Bm25Params

DOCUMENTS = [
    "新 城际 铁路 今天 开通 新 城际".split(),
    "湿地 公园 占地 1200 亩 公园 公园".split(),
    "图书馆 新增 藏书 五万 册".split(),
    [],
    "城际 列车 每天 停靠 40 列 城际".split(),
]
QUERIES = [["城际"], ["公园", "亩"], ["新", "藏书", "城际"], ["不存在"], [], ["城际", "城际"]]


def postings(documents):
    return Postings.build([term_hashes(d) for d in documents])


def listed_documents(built, row):
    """The documents of term `terms[row]`, decoded as a merge reads them."""
    term_of, docs = built.listed()
    return docs[term_of == built.terms[row]]


@pytest.mark.parametrize("k1, b", [(0.7, 0.75), (1.5, 0.3)])
def test_scores_equal_stock_bm25s(k1, b):
    stock = bm25s.BM25(k1=k1, b=b, method="lucene")
    stock.index(DOCUMENTS, show_progress=False)
    ours = Bm25([(postings(DOCUMENTS), None)], Bm25Params(k1, b))
    for query in QUERIES:
        ids = stock.get_tokens_ids(query)
        expected = stock.get_scores_from_ids(ids) if ids else np.zeros(len(DOCUMENTS))
        assert np.allclose(ours.scores(query), expected, atol=1e-6)


def test_split_and_deleted_documents_score_as_one_index_of_the_live_ones():
    """Two segments, one document deleted: the statistics are those of the four live
    documents, as if indexed alone."""
    first, second = postings(DOCUMENTS[:2]), postings(DOCUMENTS[2:])
    live = np.array([True, True, False])  # the second segment's last document
    split = Bm25([(first, None), (second, live)], Bm25Params(0.7, 0.75))
    alone = Bm25([(postings([d for i, d in enumerate(DOCUMENTS) if i != 4]), None)], Bm25Params(0.7, 0.75))
    for query in QUERIES:
        scores = split.scores(query)
        assert scores[4] == 0.0
        assert np.allclose(np.delete(scores, 4), alone.scores(query), atol=1e-6)


def test_a_deletion_changes_the_others_scores():
    one = Bm25([(postings(DOCUMENTS), None)], Bm25Params(0.7, 0.75))
    live = np.ones(len(DOCUMENTS), dtype=bool)
    live[0] = False
    fewer = Bm25([(postings(DOCUMENTS), live)], Bm25Params(0.7, 0.75))
    assert fewer.scores(["城际"])[0] == 0.0
    assert fewer.scores(["城际"])[4] > one.scores(["城际"])[4]  # rarer now: higher idf


def test_merging_keeps_the_live_documents_postings():
    parts = [(postings(DOCUMENTS[:3]), np.array([True, False, True])), (postings(DOCUMENTS[3:]), np.array([True, True]))]
    merged = Postings.merge(parts)
    fresh = postings([DOCUMENTS[i] for i in (0, 2, 3, 4)])
    for name in ("terms", "starts", "docs", "freqs", "lengths"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(fresh, name), err_msg=name)


def test_save_and_load_round_trip(tmp_path):
    built = postings(DOCUMENTS)
    built.save(tmp_path)
    loaded = Postings.load(tmp_path)
    index = Bm25([(loaded, None)], Bm25Params(0.7, 0.75))
    assert index.size == 5 and np.allclose(index.scores(["公园"]), Bm25([(built, None)], Bm25Params(0.7, 0.75)).scores(["公园"]))


@pytest.mark.parametrize("deleted_share", [0.02, 0.6])
def test_few_or_many_deletions_score_as_an_index_of_the_live_documents(deleted_share):
    """Document frequencies count live documents whether a segment has a few deletions
    (looked up in each term's list) or many (the list's documents looked up among them)."""
    rng = np.random.default_rng(1)
    vocabulary = [f"w{i}" for i in range(60)]
    documents = [list(rng.choice(vocabulary, size=rng.integers(3, 30), p=np.arange(60, 0, -1) / 1830)) for _ in range(400)]
    live = rng.random(len(documents)) > deleted_share
    split = Bm25([(postings(documents[:150]), None), (postings(documents[150:]), live[150:])], Bm25Params(1.2, 0.75))
    kept = [d for i, d in enumerate(documents) if i < 150 or live[i]]
    alone = Bm25([(postings(kept), None)], Bm25Params(1.2, 0.75))
    positions = [i for i in range(len(documents)) if i < 150 or live[i]]
    for query in (["w0", "w1"], ["w5", "w40", "w59"], ["w2", "w2", "w30"]):
        assert np.allclose(split.scores(query)[positions], alone.scores(query), atol=1e-6)


def test_a_segment_over_one_block_of_document_numbers_scores_as_bm25s():
    """Document numbers are stored in 2 bytes by blocks of 65,536: lists that cross blocks
    decode to the right documents, score as bm25s does, and survive a merge."""
    rng = np.random.default_rng(2)
    size = 140_000  # three blocks
    documents = [["常", f"w{rng.integers(40)}"] + (["稀"] if i in (3, 65_535, 65_536, 139_999) else []) for i in range(size)]
    built = postings(documents)
    assert built.blocks == 3 and built.docs.dtype == np.uint16
    row = int(np.searchsorted(built.terms, term_hashes(["稀"])[0]))
    np.testing.assert_array_equal(listed_documents(built, row), [3, 65_535, 65_536, 139_999])
    stock = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    stock.index(documents, show_progress=False)
    ours = Bm25([(built, None)], Bm25Params(1.2, 0.75))
    for query in (["稀"], ["w7"], ["w3", "稀"]):
        assert np.allclose(ours.scores(query), stock.get_scores_from_ids(stock.get_tokens_ids(query)), atol=1e-5)
    # a term in every one of 140,000 documents is left out of the query: it ranks nothing
    assert np.array_equal(ours.scores(["常", "w7"]), ours.scores(["w7"]))
    assert not ours.scores(["常"]).any()
    live = np.ones(size, dtype=bool)
    live[[3, 70_000]] = False
    merged = Postings.merge([(built, live)])
    fresh = postings([d for i, d in enumerate(documents) if live[i]])
    for name in ("terms", "starts", "docs", "freqs", "lengths"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(fresh, name), err_msg=name)


@pytest.mark.parametrize("size", [1, 7, 120, 5_000, 300_000])
def test_top_positions_are_the_highest_scores_above_zero_ties_by_key(size):
    """Equal to sorting every score, over few scores (the exact k-th) and many (the bound
    from block maxima), with ties, zeros, and k around the number of scores."""
    rng = np.random.default_rng(size)
    scores = np.round(rng.exponential(1.0, size), 1).astype(np.float32)  # many ties
    scores[rng.random(size) < 0.4] = 0.0
    keys = rng.permutation(size).astype(np.int64)
    for k in sorted({1, 3, 10, 100, size - 1, size, size + 5}):
        expected = [p for p in np.lexsort((keys, -scores)) if scores[p] > 0][: max(k, 0)]
        assert top_positions(scores, k, keys).tolist() == expected, k


def test_counting_listed_documents_across_blocks_matches_the_decoded_list():
    """Deleted documents are counted in a term's list as stored, block by block, whether
    few (searched in the list) or many (the list searched among them)."""
    rng = np.random.default_rng(3)
    size = 140_000  # three blocks
    documents = [["常", f"w{rng.integers(40)}"] + (["稀"] if i in (3, 65_535, 65_536, 139_999) else []) for i in range(size)]
    built = postings(documents)
    rows = np.searchsorted(built.terms, term_hashes(["常", "稀", "w7"]))
    for docs in (
        np.array([3, 65_536, 139_999]),
        np.flatnonzero(rng.random(size) < 0.01),
        np.flatnonzero(rng.random(size) < 0.7),
        np.zeros(0, dtype=np.int64),
    ):
        for row in rows:
            expected = int(np.isin(listed_documents(built, int(row)), docs).sum())
            assert built.count_listed(np.array([row]), built.by_block(docs))[0] == expected
