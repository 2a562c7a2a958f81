"""The dense index: exact when small, compressed and re-ranked when large, chosen by size;
int8 rows; segments searched together with deleted passages left out."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from qa.assistant import Assistant
from qa.build import build_index
from qa.dense import (
    Dense,
    RowFile,
    SegmentVectors,
    centred_sign_codes,
    choose_factory,
    quantize,
    sign_code_factors,
)
from qa.store import load_snapshot


def test_the_factory_follows_the_size():
    assert choose_factory(50_000, 512, exact_max_vectors=50_000) == "Flat"
    assert choose_factory(50_001, 512, exact_max_vectors=50_000) == "CentredSignfs"
    assert choose_factory(10**7, 384, exact_max_vectors=50_000) == "CentredSignfs"
    assert choose_factory(999, 64, exact_max_vectors=10) == "Flat"  # too few rows to bother
    assert choose_factory(10**7, 386, exact_max_vectors=50_000) == "Flat"  # signs go to a code in fours


def clustered(rng, centres, rows):
    """Unit vectors around topic centres, like sentences (and questions) about a few hundred topics."""
    vectors = centres[rng.integers(len(centres), size=rows)] + 0.6 * rng.normal(size=(rows, centres.shape[1]))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def segment(vectors, owners, exact_max_vectors):
    codes, scales = quantize(vectors)
    return SegmentVectors.build(codes, scales, owners, exact_max_vectors=exact_max_vectors)


def stored_passage_scores(vectors, owners, query):
    """Each passage's best cosine as the int8 rows give it."""
    codes, scales = quantize(vectors)
    scores = (codes.astype(np.float32) @ query) * scales
    best = np.full(owners.max() + 1, -np.inf, dtype=np.float32)
    np.maximum.at(best, owners, scores)
    return best


def test_int8_rows_keep_cosines_within_a_few_ten_thousandths():
    rng = np.random.default_rng(2)
    vectors = clustered(rng, rng.normal(size=(50, 384)), 500)
    codes, scales = quantize(vectors)
    restored = codes.astype(np.float32) * scales[:, None]
    queries = clustered(rng, rng.normal(size=(50, 384)), 20)
    error = np.abs(restored @ queries.T - vectors @ queries.T)
    assert error.mean() < 5e-4 and error.max() < 2.5e-3


def sharing_a_direction(rng, common, centres, rows):
    """Unit vectors with a large common part, as e5's are (their cosines lie within a
    narrow range), about topic centres, spread by differing amounts."""
    spread = rng.uniform(0.3, 1.5, size=(rows, 1)) / np.sqrt(len(common))
    vectors = common + spread * (centres[rng.integers(len(centres), size=rows)] + 0.6 * rng.normal(size=(rows, len(common))))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_sign_codes_score_the_centred_signs_and_their_factors_estimate_the_cosine():
    """FAISS scores a row by the question's centred components summed with the signs of
    the row's (within its 8-bit lookup tables' rounding); each row's slope and offset turn
    that score into an estimated cosine close enough to find the best rows. A slope
    shared by all rows finds 92% of them here, no offsets 89%."""
    rng = np.random.default_rng(6)
    common = rng.normal(size=64)
    common /= np.linalg.norm(common)
    centres = rng.normal(size=(100, 64))
    rows = sharing_a_direction(rng, common, centres, 5000)
    index = centred_sign_codes(rows[:2000])
    index.add(rows)
    centre = rows[:2000].mean(axis=0)
    factors = sign_code_factors(rows, centre)
    signs = np.where(rows - centre > 0, 1.0, -1.0)
    errors, found = [], []
    for query in sharing_a_direction(rng, common, centres, 20):
        scores, order = index.search(query.reshape(1, -1), len(rows))
        exact_scores = signs @ (query - centre)
        np.testing.assert_allclose(scores[0], exact_scores[order[0]], atol=0.02 * np.abs(exact_scores).max())
        estimates = factors[:, 0] * exact_scores + factors[:, 1] + query @ centre
        cosines = rows @ query
        errors.append(np.mean(np.abs(estimates - cosines)))
        found.append(len(set(np.argsort(-cosines)[:10]) & set(np.argsort(-estimates)[:50])) / 10)
    assert np.mean(errors) < 0.05 and np.mean(found) >= 0.98


def test_a_compressed_index_finds_the_top_passages_and_scores_them_as_stored():
    rng = np.random.default_rng(0)
    owners = np.repeat(np.arange(4000), rng.integers(1, 6, size=4000))
    centres = rng.normal(size=(400, 64))
    vectors = clustered(rng, centres, len(owners))
    approximate = segment(vectors, owners, exact_max_vectors=1000)
    exact = segment(vectors, owners, exact_max_vectors=len(owners))
    assert not approximate.exact and exact.exact and approximate.factory == "CentredSignfs"

    searched = Dense([(approximate, None)], [4000], np.arange(4000, dtype=np.uint64))
    found = []
    for query in clustered(rng, centres, 50):
        truth = stored_passage_scores(vectors, owners, query)
        scores, passages = searched.search(query, 10)
        np.testing.assert_allclose(scores, truth[passages], atol=1e-5)  # re-ranked with the stored rows
        assert list(scores) == sorted(scores, reverse=True)
        tenth = np.sort(truth)[-10]
        found.append(np.mean(truth[passages] >= tenth - 1e-6))
    assert np.mean(found) >= 0.98


def test_segments_are_searched_together_and_deleted_passages_never_come_back():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(40, 64))
    first, second = clustered(rng, centres, 300), clustered(rng, centres, 200)
    owners_first, owners_second = np.repeat(np.arange(100), 3), np.repeat(np.arange(100), 2)
    live = np.ones(100, dtype=bool)
    live[::2] = False
    keys = np.arange(200, dtype=np.uint64)
    dense = Dense([(segment(first, owners_first, 10_000), None), (segment(second, owners_second, 10_000), live)], [100, 100], keys)
    whole = Dense([(segment(np.vstack([first, second]), np.concatenate([owners_first, owners_second + 100]), 10_000), None)], [200], keys)
    for query in clustered(rng, centres, 20):
        scores, positions = dense.search(query, 10)
        assert not any(p >= 100 and not live[p - 100] for p in positions)
        all_scores, all_positions = whole.search(query, 60)
        kept = [(s, p) for s, p in zip(all_scores, all_positions) if p < 100 or live[p - 100]][:10]
        np.testing.assert_allclose(scores, [s for s, _ in kept], atol=1e-6)
        np.testing.assert_allclose(dense.scores_of(query, positions), scores, atol=1e-6)


def test_compressed_segments_pool_their_estimates_and_score_the_best_passages_as_stored():
    """The best estimates over all compressed segments choose the passages scored from their
    rows: scores exact, deleted passages left out, the top 10 that exact search over all
    segments finds."""
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(300, 64))
    sizes = (3000, 2000, 150)  # two compressed segments and a small exact one
    owners = [np.repeat(np.arange(size), rng.integers(1, 6, size=size)) for size in sizes]
    vectors = [clustered(rng, centres, len(o)) for o in owners]
    parts = [segment(v, o, exact_max_vectors=1000) for v, o in zip(vectors, owners)]
    assert [p.exact for p in parts] == [False, False, True]
    live = np.ones(2000, dtype=bool)
    live[rng.choice(2000, 200, replace=False)] = False
    dense = Dense([(parts[0], None), (parts[1], live), (parts[2], None)], sizes, np.arange(sum(sizes), dtype=np.uint64))
    found = []
    for query in clustered(rng, centres, 50):
        truth = np.concatenate([stored_passage_scores(v, o, query) for v, o in zip(vectors, owners)])
        truth[3000:5000][~live] = -np.inf
        scores, positions = dense.search(query, 10)
        np.testing.assert_allclose(scores, truth[positions], atol=1e-5)
        assert np.all(np.isfinite(truth[positions]))  # no deleted passage
        assert list(scores) == sorted(scores, reverse=True)
        found.append(np.mean(truth[positions] >= np.sort(truth)[-10] - 1e-6))
    assert np.mean(found) >= 0.98


def test_a_large_index_is_built_compressed_and_updated(tiny_corpus, settings, hashing_embedder, tokenizer):
    districts = "东西南北中"
    for number in range(150):  # about 1,200 sentence vectors
        sentences = [f"{districts[number % 5]}城第{number}号项目第{i}期工程于{2000 + i}年完成，投资{number + i}亿元。" for i in range(8)]
        (tiny_corpus / f"project-{number:03d}.md").write_text(f"# 项目{number}\n\n" + "".join(sentences) + "\n", encoding="utf-8")
    settings = dataclasses.replace(settings, dense_exact_max_vectors=2)
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    snapshot = load_snapshot(settings.index_dir)
    assert [s.vectors.factory for s in snapshot.segments] == ["CentredSignfs"]
    assistant = Assistant(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    assert "1200亩" in assistant.ask("湿地公园占地多少亩？").hits[0].passage.text

    (tiny_corpus / "library.md").write_text("# 图书馆扩建\n\n新城图书馆扩建完成，新增藏书五万册。\n", encoding="utf-8")
    hashing_embedder.calls.clear()
    summary = build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    assert summary.embedded == 1 and summary.segments == 2  # a small segment beside the large one
    assert "五万册" in assistant.ask("图书馆新增了多少藏书？").hits[0].passage.text
    assert {"faiss", "bm25", "embed", "tokenize", "chunk", "write"} <= set(summary.stages)


def test_saved_rows_are_read_by_range_as_saved(tmp_path):
    rows = np.asarray(np.random.default_rng(5).integers(-127, 128, size=(300, 48)), dtype=np.int8)
    np.save(tmp_path / "codes.npy", rows)
    stored = RowFile(tmp_path / "codes.npy")
    assert stored.shape == rows.shape
    np.testing.assert_array_equal(stored.read(np.array([299, 3, 150]), np.array([300, 5, 151])), rows[[299, 3, 4, 150]])
    assert stored.read(np.array([], dtype=np.int64), np.array([], dtype=np.int64)).shape == (0, 48)


def test_rows_not_saved_as_int8_rows_in_c_order_are_refused(tmp_path):
    np.save(tmp_path / "fortran.npy", np.asfortranarray(np.ones((4, 3), dtype=np.int8)))
    np.save(tmp_path / "floats.npy", np.ones((4, 3), dtype=np.float32))
    for name in ("fortran", "floats"):
        with pytest.raises(ValueError, match="expected int8 rows in C order"):
            RowFile(tmp_path / f"{name}.npy")


def test_rows_cut_short_on_disk_are_an_error_not_garbage(tmp_path):
    np.save(tmp_path / "codes.npy", np.ones((100, 64), dtype=np.int8))
    stored = RowFile(tmp_path / "codes.npy")
    with open(tmp_path / "codes.npy", "r+b") as file:
        file.truncate(file.seek(0, 2) - 64 * 10)
    np.testing.assert_array_equal(stored.read(np.array([0]), np.array([90])), np.ones((90, 64), dtype=np.int8))
    with pytest.raises(OSError, match="shorter than its header says"):
        stored.read(np.array([85]), np.array([95]))


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="a mapping's resident pages are read from Linux's /proc")
def test_questions_read_rows_without_mapping_them_into_the_process(tmp_path):
    """A question's rows are read with pread: the pages stay the kernel's page cache
    instead of counting as the process's memory (as every page touched through the
    mapped array would, 3 GB of them at 1M passages)."""
    rng = np.random.default_rng(0)
    owners = np.repeat(np.arange(4000), 4)
    centres = rng.normal(size=(100, 64))
    vectors = clustered(rng, centres, len(owners))
    segment(vectors, owners, exact_max_vectors=1000).save(tmp_path)
    loaded = SegmentVectors.load(tmp_path)
    assert loaded.factory == "CentredSignfs" and loaded.stored is not None
    dense = Dense([(loaded, None)], [4000], np.arange(4000, dtype=np.uint64))
    for query in clustered(rng, centres, 30):
        scores, positions = dense.search(query, 100)
        assert len(positions) == 100
        np.testing.assert_allclose(scores, stored_passage_scores(vectors, owners, query)[positions], atol=1e-5)
        assert len(dense.sentence_scores(query, int(positions[0]))) == 4
    assert _mapping_field(tmp_path / "codes.npy", "Rss:") == ["0", "kB"]
    assert int(np.asarray(loaded.codes[3999], dtype=np.int64).sum()) != 0  # bulk readers read through the mapping
    assert _mapping_field(tmp_path / "codes.npy", "Rss:") != ["0", "kB"]


def _mapping_field(path, field):
    """A field of `path`'s mapping in this process's /proc/self/smaps."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:  # a mapping's first line
            inside = fields[-1] == str(path)
        elif inside and fields[0] == field:
            return fields[1:]
    raise AssertionError(f"{path} is not mapped")


@pytest.mark.parametrize("shape", [(0, 8), (8,)])
def test_building_from_no_vectors_is_refused(shape):
    with pytest.raises(ValueError, match="non-empty"):
        SegmentVectors.build(np.zeros(shape, dtype=np.int8), np.zeros(0, np.float32), np.zeros(0, np.int32), exact_max_vectors=10)


def test_identical_sentences_are_embedded_once(tmp_path, settings, hashing_embedder, tokenizer):
    corpus = settings.corpus_dir
    corpus.mkdir()
    closing = "本报记者王明报道。"
    for name in ("a", "b"):
        (corpus / f"{name}.md").write_text(f"# 稿件{name}\n\n{name}区今天开放新公园，市民可免费入园。{closing}\n", encoding="utf-8")
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    embedded = [text for call in hashing_embedder.calls for text in call]
    assert embedded.count(closing) == 1
    vectors = load_snapshot(settings.index_dir).segments[0].vectors
    rows = [np.asarray(vectors.codes[vectors.rows_of(i)])[-1] for i in range(2)]
    np.testing.assert_array_equal(rows[0], rows[1])
