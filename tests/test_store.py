"""The index on disk: segments, commit points, the typed manifest, clean-up."""

import dataclasses
import multiprocessing
import os

import numpy as np
import pytest

from qa.build import build_index, index_settings
from qa.errors import IndexCorruptError, IndexMissingError
from qa.manifest import FORMAT_VERSION, rebuild_reason
from qa.store import load_snapshot, read_current_manifest


@pytest.fixture
def built(tiny_corpus, settings, hashing_embedder, tokenizer):
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    return settings


def test_round_trip_keeps_passages_vectors_and_bm25_aligned(built):
    snapshot = load_snapshot(built.index_dir)
    assert snapshot.size == snapshot.lexical.size == snapshot.manifest.passages == 4
    assert snapshot.dense.vectors >= 4
    assert {p.source for p in snapshot.live_passages()} == {"rail.md", "park.md"}


def test_manifest_says_who_wrote_the_index_and_how(built, tokenizer):
    manifest = read_current_manifest(built.index_dir)
    assert manifest.format_version == FORMAT_VERSION
    assert manifest.settings == index_settings(built, tokenizer)
    assert manifest.settings.model == "test-hashing" and manifest.dimension == 64
    assert manifest.articles == 2 and manifest.passages == 4
    assert {"faiss-cpu", "jieba"} <= set(manifest.libraries)
    assert manifest.created_at
    articles = load_snapshot(built.index_dir).articles()
    assert {a.path for a in articles} == {"rail.md", "park.md"} and all(len(a.sha256) == 64 for a in articles)


@pytest.mark.parametrize(
    "change, reason",
    [
        (dict(model="other-model"), "model changed"),
        (dict(tokenizer="jieba-only"), "tokenizer changed"),
        (dict(sentence_splitter="sentences"), "sentence splitter changed"),
    ],
)
def test_every_setting_that_shapes_the_index_asks_for_a_rebuild(built, tokenizer, change, reason):
    manifest = read_current_manifest(built.index_dir)
    assert rebuild_reason(manifest.settings, manifest.settings) is None
    assert reason in rebuild_reason(manifest.settings, dataclasses.replace(manifest.settings, **change))


def test_a_changed_tokenizer_rebuilds_the_index(built, hashing_embedder, tokenizer):
    class OtherTokenizer(type(tokenizer)):
        name = "another-tokenizer"

    summary = build_index(built, embedder=hashing_embedder, tokenizer=OtherTokenizer())
    assert summary.rebuilt.startswith("tokenizer changed")
    assert read_current_manifest(built.index_dir).settings.tokenizer == "another-tokenizer"


def test_chunking_and_bm25_changes_rebuild(built, hashing_embedder, tokenizer):
    summary = build_index(dataclasses.replace(built, bm25_k1=1.2), embedder=hashing_embedder, tokenizer=tokenizer)
    assert summary.rebuilt.startswith("BM25 parameters changed")
    summary = build_index(dataclasses.replace(built, bm25_k1=1.2, max_passage_chars=300), embedder=hashing_embedder, tokenizer=tokenizer)
    assert summary.rebuilt.startswith("chunking settings changed")


def test_no_pickle_on_disk(built):
    for file in built.index_dir.rglob("*.npy"):
        np.load(file, allow_pickle=False)  # raises if an array holds Python objects


def test_a_rebuild_replaces_the_segments_and_removes_the_old_ones(built, hashing_embedder, tokenizer):
    first = {p.name for p in (built.index_dir / "segments").iterdir()}
    build_index(built, embedder=hashing_embedder, tokenizer=tokenizer, rebuild=True)
    second = {p.name for p in (built.index_dir / "segments").iterdir()}
    assert second and not first & second
    assert len(list((built.index_dir / "commits").iterdir())) == 1


def test_missing_index_says_how_to_build_one(tmp_path):
    with pytest.raises(IndexMissingError, match="qa index"):
        load_snapshot(tmp_path / "nowhere")


def test_truncated_file_is_named(built):
    path = next((built.index_dir / "segments").glob("*/dense.faiss"))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IndexCorruptError, match="dense.faiss"):
        load_snapshot(built.index_dir)


def test_garbled_manifest_is_reported(built):
    commit = built.index_dir / "commits" / (built.index_dir / "CURRENT").read_text().strip()
    commit.write_text("{not json")
    with pytest.raises(IndexCorruptError, match="not valid JSON"):
        load_snapshot(built.index_dir)


def test_an_index_of_the_previous_format_is_rebuilt_with_the_reason(built, hashing_embedder, tokenizer):
    (built.index_dir / "CURRENT").write_text("20260101T000000-abc\n")  # what format 4 wrote
    summary = build_index(built, embedder=hashing_embedder, tokenizer=tokenizer)
    assert summary.rebuilt.startswith("index format changed") and "before segments" in summary.rebuilt
    assert load_snapshot(built.index_dir).manifest.passages == 4


@pytest.mark.parametrize("damage", ["commit", "database"])
def test_a_rebuild_starts_over_from_an_index_it_cannot_read(built, hashing_embedder, tokenizer, damage):
    index = built.index_dir
    if damage == "commit":
        (index / "commits" / (index / "CURRENT").read_text().strip()).write_text("{")
    else:
        for file in index.glob("passages.sqlite*"):
            file.unlink()
        (index / "passages.sqlite").write_bytes(b"not a database" * 100)
        with pytest.raises(IndexCorruptError, match="passages.sqlite"):
            build_index(built, embedder=hashing_embedder, tokenizer=tokenizer)  # an update says what to do …
    summary = build_index(built, embedder=hashing_embedder, tokenizer=tokenizer, rebuild=damage == "database")
    assert summary.rebuilt and summary.passages == 4  # … and a rebuild does it
    assert {p.source for p in load_snapshot(index).live_passages()} == {"rail.md", "park.md"}
    assert len(list((index / "commits").iterdir())) == 1


# A merge (or update) killed at each of its steps: the stage functions below are replaced,
# in a child process, by ones that end the process abruptly right after the step.
_STAGES = ["qa.merge.write_segment", "qa.records.Records.copy_segment", "qa.merge.commit", "qa.merge.collect_garbage"]


def _merge_and_die(settings, stage, embedder, tokenizer):
    import importlib

    module_name, _, attribute = stage.rpartition(".")
    try:
        owner = importlib.import_module(module_name)
    except ModuleNotFoundError:  # a method: module.Class.method
        module_name, _, class_name = module_name.rpartition(".")
        owner = getattr(importlib.import_module(module_name), class_name)
    original = getattr(owner, attribute)

    def then_die(*args, **kwargs):
        original(*args, **kwargs)
        os._exit(9)

    setattr(owner, attribute, then_die)
    build_index(settings, embedder=embedder, tokenizer=tokenizer, optimize=True)


@pytest.mark.parametrize("stage", _STAGES)
def test_a_merge_killed_after_any_step_leaves_the_last_commit_serving(built, hashing_embedder, tokenizer, stage):
    corpus = built.corpus_dir
    for n in range(3):
        (corpus / f"note-{n}.md").write_text(f"# 通知{n}\n\n第{n}号通知：图书馆周{n + 1}闭馆整理。\n", encoding="utf-8")
        build_index(built, embedder=hashing_embedder, tokenizer=tokenizer, merge=False)
    before = load_snapshot(built.index_dir)
    expected = {p.id for p in before.live_passages()}
    before.close()
    child = multiprocessing.get_context("fork").Process(target=_merge_and_die, args=(built, stage, hashing_embedder, tokenizer))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 9
    after = load_snapshot(built.index_dir)
    assert {p.id for p in after.live_passages()} == expected
    after.close()
    summary = build_index(built, embedder=hashing_embedder, tokenizer=tokenizer, optimize=True)
    assert summary.segments == 1
    final = load_snapshot(built.index_dir)
    assert {p.id for p in final.live_passages()} == expected
    assert {p.name for p in (built.index_dir / "segments").iterdir()} == {s.name for s in final.manifest.segments}
    assert len(list((built.index_dir / "commits").iterdir())) == 1
