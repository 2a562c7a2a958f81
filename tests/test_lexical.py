import bm25s
import numpy as np
import pytest

from qa.lexical import LexicalIndex

DOCUMENTS = [
    "新 城际 铁路 今天 开通 新 城际".split(),
    "湿地 公园 占地 1200 亩 公园 公园".split(),
    "图书馆 新增 藏书 五万 册".split(),
    [],
    "城际 列车 每天 停靠 40 列 城际".split(),
]
QUERIES = [["城际"], ["公园", "亩"], ["新", "藏书", "城际"], ["不存在"], []]


@pytest.mark.parametrize("k1, b", [(0.7, 0.75), (1.5, 0.3)])
def test_scores_equal_stock_bm25s(k1, b):
    stock = bm25s.BM25(k1=k1, b=b, method="lucene")
    stock.index(DOCUMENTS, show_progress=False)
    ours = LexicalIndex.build(DOCUMENTS, k1=k1, b=b)
    for query in QUERIES:
        ids = stock.get_tokens_ids(query)
        expected = stock.get_scores_from_ids(ids) if ids else np.zeros(len(DOCUMENTS))
        assert np.allclose(ours.scores(query), expected, atol=1e-6)


def test_building_from_ids_equals_building_from_tokens():
    vocabulary: dict[str, int] = {}
    id_lists = [np.array([vocabulary.setdefault(t, len(vocabulary)) for t in doc], dtype=np.int32) for doc in DOCUMENTS]
    vocabulary["未用词"] = len(vocabulary)  # an entry no document uses any more
    from_ids = LexicalIndex.build_from_ids(id_lists, vocabulary, k1=0.7, b=0.75)
    from_tokens = LexicalIndex.build(DOCUMENTS, k1=0.7, b=0.75)
    for query in QUERIES:
        assert np.allclose(from_ids.scores(query), from_tokens.scores(query), atol=1e-6)


def test_save_and_load_round_trip(tmp_path):
    index = LexicalIndex.build(DOCUMENTS, k1=0.7, b=0.75)
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    assert loaded.size == 5 and np.allclose(loaded.scores(["公园"]), index.scores(["公园"]))
