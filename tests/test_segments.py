"""Segments over time: an index updated article by article answers as a fresh build does;
small segments are merged by size class."""

import dataclasses
import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import qa.dense
from qa.build import build_index
from qa.manifest import SegmentEntry
from qa.merge import MERGE_FACTOR, choose_merges
from qa.search import Retriever
from qa.store import load_snapshot

TOPICS = ["城际铁路", "湿地公园", "图书馆", "新能源汽车", "科技园区", "文化旅游", "医疗服务", "职业教育"]
QUESTIONS = ["城际铁路每天停靠多少列车？", "湿地公园占地多少亩？", "图书馆新增多少藏书？", "新能源汽车产值多少？", "科技园区引进多少企业？"]


def article(rng: random.Random, number: int) -> str:
    paragraphs = []
    for _ in range(rng.randint(1, 4)):
        topic = rng.choice(TOPICS)
        paragraphs.append(
            f"{topic}第{rng.randint(1, 9)}期项目今年完成投资{rng.randint(1, 90)}亿元，"
            f"新增{rng.randint(10, 900)}个岗位，{rng.choice(TOPICS)}同步推进。"
        )
    return f"# 新闻{number}\n\n" + "\n\n".join(paragraphs)


def tops(settings, embedder, tokenizer, mode, executor=None):
    snapshot = load_snapshot(settings.index_dir)
    retriever = Retriever(snapshot, embedder=embedder, tokenizer=tokenizer, settings=settings, executor=executor)
    out = []
    for question in QUESTIONS:
        results = retriever.search(question, k=10, mode=mode)
        out.append([(p.id, round(r.score, 5)) for p, r in zip(retriever.passages(results), results)])
    snapshot.close()
    return out


def test_an_index_updated_article_by_article_ranks_as_a_fresh_build(tmp_path, settings, hashing_embedder, tokenizer, monkeypatch):
    monkeypatch.setattr(qa.dense, "_LARGE_SEGMENT_VECTORS", 1)  # every segment searched on a thread of its own
    rng = random.Random(7)
    corpus = settings.corpus_dir
    corpus.mkdir()
    for number in range(30):
        (corpus / f"news-{number:03d}.md").write_text(article(rng, number), encoding="utf-8")
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    merged = 0
    for number in range(30, 90):
        files = sorted(corpus.glob("*.md"))
        kind = rng.choice(["add", "add", "change", "remove"])
        if kind == "add" or len(files) < 5:
            (corpus / f"news-{number:03d}.md").write_text(article(rng, number), encoding="utf-8")
        elif kind == "change":
            rng.choice(files).write_text(article(rng, number), encoding="utf-8")
        else:
            rng.choice(files).unlink()
        merged += build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer).merged
    updated = load_snapshot(settings.index_dir)
    assert len(updated.manifest.segments) > 1 and merged >= MERGE_FACTOR  # segments came and were merged
    assert {a.path for a in updated.articles()} == {p.name for p in corpus.glob("*.md")}
    updated.close()
    fresh = dataclasses.replace(settings, index_dir=tmp_path / "fresh")
    build_index(fresh, embedder=hashing_embedder, tokenizer=tokenizer)
    with ThreadPoolExecutor(max_workers=2) as threads:  # segments searched side by side, as the app does
        for mode in ("bm25", "dense", "hybrid"):
            expected = tops(fresh, hashing_embedder, tokenizer, mode)
            assert tops(settings, hashing_embedder, tokenizer, mode) == expected, mode
            assert tops(settings, hashing_embedder, tokenizer, mode, threads) == expected, mode


def test_questions_asked_at_once_share_the_search_threads_without_waiting_on_each_other(settings, hashing_embedder, tokenizer, monkeypatch):
    """BM25 and the dense index's segments go to the search threads from the asking
    thread; a task that waited for other tasks would hang here, on a single thread."""
    monkeypatch.setattr(qa.dense, "_LARGE_SEGMENT_VECTORS", 1)
    rng = random.Random(5)
    settings.corpus_dir.mkdir()
    for number in range(4):  # one segment each
        (settings.corpus_dir / f"news-{number:03d}.md").write_text(article(rng, number), encoding="utf-8")
        build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    snapshot = load_snapshot(settings.index_dir)
    assert len(snapshot.manifest.segments) == 4
    alone = Retriever(snapshot, embedder=hashing_embedder, tokenizer=tokenizer, settings=settings)
    expected = {q: alone.search(q, k=10) for q in QUESTIONS}
    search_thread, askers = ThreadPoolExecutor(max_workers=1), ThreadPoolExecutor(max_workers=8)
    try:
        shared = Retriever(snapshot, embedder=hashing_embedder, tokenizer=tokenizer, settings=settings, executor=search_thread)
        asked = [(q, askers.submit(shared.search, q, k=10)) for q in QUESTIONS * 4]
        for question, answer in asked:
            assert answer.result(timeout=60) == expected[question]
    finally:  # report a hang as a failure rather than wait for it here
        askers.shutdown(wait=False, cancel_futures=True)
        search_thread.shutdown(wait=False, cancel_futures=True)
    snapshot.close()


def test_ten_segments_of_a_size_class_merge_into_one():
    small = tuple(SegmentEntry(f"{n:08d}", 5) for n in range(MERGE_FACTOR))
    assert choose_merges(small, max_docs=100_000) == [list(range(MERGE_FACTOR))]
    assert choose_merges(small[:-1], max_docs=100_000) == []
    large = (SegmentEntry("00000100", 90_000),)
    assert choose_merges(large + small[:-1], max_docs=100_000) == []  # different classes stay apart


def test_a_segment_mostly_deleted_is_rewritten_and_nothing_grows_past_the_bound():
    entries = (SegmentEntry("00000001", 1000, deleted=600, deletions="deleted-00000002.npy"), SegmentEntry("00000003", 1000))
    assert choose_merges(entries, max_docs=100_000) == [[0]]
    full = tuple(SegmentEntry(f"{n:08d}", 60_000) for n in range(MERGE_FACTOR))
    assert choose_merges(full, max_docs=100_000) == []
    assert choose_merges(full, max_docs=100_000, optimize=True) == []
    assert choose_merges(full[:2] + small_ones(3), max_docs=100_000, optimize=True) == [[2, 3, 4, 0]]


def small_ones(count):
    return tuple(SegmentEntry(f"{90 + n:08d}", 10) for n in range(count))


@pytest.mark.parametrize("optimize", [False, True])
def test_merges_keep_every_live_passage(tmp_path, settings, hashing_embedder, tokenizer, optimize):
    rng = random.Random(3)
    corpus = settings.corpus_dir
    corpus.mkdir()
    for number in range(12):
        (corpus / f"news-{number:03d}.md").write_text(article(rng, number), encoding="utf-8")
        build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer, merge=False)
    (corpus / "news-003.md").unlink()
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer, merge=False)
    before = load_snapshot(settings.index_dir)
    expected = sorted((p.id, p.text, p.source) for p in before.live_passages())
    segments = len(before.manifest.segments)
    before.close()
    summary = build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer, optimize=optimize)
    after = load_snapshot(settings.index_dir)
    assert sorted((p.id, p.text, p.source) for p in after.live_passages()) == expected
    assert summary.merged >= (segments if optimize else MERGE_FACTOR) and len(after.manifest.segments) < segments
    assert after.manifest.passages == len(expected)
    if optimize:  # one segment, the deleted article's passages gone from it
        assert len(after.manifest.segments) == 1 and after.manifest.segments[0].deleted == 0
    assert np.all(np.diff(after.live_positions()) > 0)
