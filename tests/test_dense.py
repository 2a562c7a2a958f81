"""The dense index: exact when small, compressed and re-ranked when large, chosen by size."""

import dataclasses

import numpy as np
import pytest

from qa.assistant import Assistant
from qa.build import build_index
from qa.dense import DenseIndex, choose_factory
from qa.store import load_snapshot


def test_the_factory_follows_the_size():
    assert choose_factory(50_000, 512, exact_max_vectors=50_000) == "Flat"
    assert choose_factory(50_001, 512, exact_max_vectors=50_000) == "RaBitQfs"
    assert choose_factory(10**7, 384, exact_max_vectors=50_000) == "RaBitQfs"
    assert choose_factory(999, 64, exact_max_vectors=10) == "Flat"  # too few rows to bother


def clustered(rng, centres, rows):
    """Unit vectors around topic centres, like sentences (and questions) about a few hundred topics."""
    vectors = centres[rng.integers(len(centres), size=rows)] + 0.6 * rng.normal(size=(rows, centres.shape[1]))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float16)


def exact_passage_scores(vectors, owners, query):
    scores = vectors.astype(np.float32) @ query
    best = np.full(owners.max() + 1, -np.inf, dtype=np.float32)
    np.maximum.at(best, owners, scores)
    return best


def test_a_compressed_index_finds_the_exact_top_passages_and_scores_them_exactly():
    rng = np.random.default_rng(0)
    owners = np.repeat(np.arange(4000), rng.integers(1, 6, size=4000))
    centres = rng.normal(size=(400, 64))
    vectors = clustered(rng, centres, len(owners))
    approximate = DenseIndex.build(vectors, owners, exact_max_vectors=1000)
    exact = DenseIndex.build(vectors, owners, exact_max_vectors=len(owners))
    assert not approximate.exact and exact.exact
    assert approximate.description == {"factory": "RaBitQfs", "exact": False, "rerank_rows": 400}

    found = []
    for query in clustered(rng, centres, 50).astype(np.float32):
        truth = exact_passage_scores(vectors, owners, query)
        scores, passages = approximate.search(query, 10)
        np.testing.assert_allclose(scores, truth[passages], atol=1e-5)  # re-ranked: exact scores
        assert list(scores) == sorted(scores, reverse=True)
        tenth = np.sort(truth)[-10]
        found.append(np.mean(truth[passages] >= tenth - 1e-6))
        _, exact_passages = exact.search(query, 10)
        np.testing.assert_allclose(np.sort(truth[exact_passages]), np.sort(truth)[-10:], atol=1e-5)
    assert np.mean(found) >= 0.98


def test_a_large_index_is_built_compressed_recorded_and_updated(tiny_corpus, settings, hashing_embedder, tokenizer):
    districts = "东西南北中"
    for number in range(150):  # about 1,200 sentence vectors
        sentences = [f"{districts[number % 5]}城第{number}号项目第{i}期工程于{2000 + i}年完成，投资{number + i}亿元。" for i in range(8)]
        (tiny_corpus / f"project-{number:03d}.md").write_text(f"# 项目{number}\n\n" + "".join(sentences) + "\n", encoding="utf-8")
    settings = dataclasses.replace(settings, dense_exact_max_vectors=2)
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    snapshot = load_snapshot(settings.index_dir)
    assert snapshot.manifest["dense"]["factory"] == "RaBitQfs" and snapshot.manifest["dense"]["exact"] is False
    assistant = Assistant(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    assert "1200亩" in assistant.ask("湿地公园占地多少亩？").hits[0].passage.text

    (tiny_corpus / "library.md").write_text("# 图书馆扩建\n\n新城图书馆扩建完成，新增藏书五万册。\n", encoding="utf-8")
    hashing_embedder.calls.clear()
    summary = build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    assert summary.embedded == 1  # the other passages' vectors come from the stored float16 rows
    assert "五万册" in assistant.ask("图书馆新增了多少藏书？").hits[0].passage.text
    assert {"faiss", "bm25", "embed", "tokenize", "chunk", "write"} <= set(summary.stages)


@pytest.mark.parametrize("shape", [(0, 8), (8,)])
def test_building_from_no_vectors_is_refused(shape):
    with pytest.raises(ValueError, match="non-empty"):
        DenseIndex.build(np.zeros(shape, dtype=np.float32), np.zeros(0), exact_max_vectors=10)


def test_identical_sentences_are_embedded_once(tmp_path, settings, hashing_embedder, tokenizer):
    corpus = settings.corpus_dir
    corpus.mkdir()
    closing = "本报记者王明报道。"
    for name in ("a", "b"):
        (corpus / f"{name}.md").write_text(f"# 稿件{name}\n\n{name}区今天开放新公园，市民可免费入园。{closing}\n", encoding="utf-8")
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    embedded = [text for call in hashing_embedder.calls for text in call]
    assert embedded.count(closing) == 1
    snapshot = load_snapshot(settings.index_dir)
    rows = [np.asarray(snapshot.dense.vectors_of(i))[-1] for i in range(2)]
    np.testing.assert_array_equal(rows[0], rows[1])


def test_an_updated_compressed_index_finds_the_new_sentences():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(400, 64))
    owners = np.repeat(np.arange(3000), 3)
    vectors = clustered(rng, centres, len(owners))
    first = DenseIndex.build(vectors, owners, exact_max_vectors=1000)
    more = np.vstack([vectors, clustered(rng, centres, 30)])
    updated = DenseIndex.build(more, np.repeat(np.arange(3010), 3), exact_max_vectors=1000)
    assert first.vectors == len(vectors) and updated.vectors == len(more) and not updated.exact
    query = more[-1].astype(np.float32)  # a sentence of the new passages
    scores, passages = updated.search(query, 3)
    assert passages[0] == 3009 and scores[0] == pytest.approx(1.0, abs=1e-3)
