import json

import pytest

from qa.build import build_index
from qa.errors import IndexCorruptError, IndexMissingError
from qa.store import FORMAT_VERSION, load_snapshot, read_manifest


@pytest.fixture
def built(tiny_corpus, settings, hashing_embedder, tokenizer):
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    return settings


def test_round_trip_keeps_passages_vectors_and_bm25_aligned(built):
    snapshot = load_snapshot(built.index_dir)
    assert len(snapshot.passages) == snapshot.dense.size == snapshot.lexical.size == 4
    assert snapshot.dense.vectors >= 4
    assert {p.source for p in snapshot.passages} == {"rail.md", "park.md"}


def test_manifest_says_who_wrote_the_index(built):
    manifest = read_manifest(built.index_dir)
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["model"] == {"name": "test-hashing", "dimension": 64}
    assert manifest["counts"] == {"articles": 2, "passages": 4}
    assert {s["path"] for s in manifest["sources"]} == {"rail.md", "park.md"}
    assert all(len(s["sha256"]) == 64 for s in manifest["sources"])
    assert {"bm25s", "faiss-cpu", "jieba"} <= set(manifest["libraries"])
    assert manifest["created_at"]
    assert all(f["bytes"] > 0 for f in manifest["files"].values())


def test_no_pickle_on_disk(built):
    snapshot = load_snapshot(built.index_dir)
    for file in snapshot.path.rglob("*"):
        if file.suffix == ".npy":
            with open(file, "rb") as data:
                header = data.read(128)
            assert b"'descr': '|O'" not in header  # object arrays would need pickle


def test_a_rebuild_replaces_the_snapshot_and_removes_the_old_one(built, hashing_embedder, tokenizer):
    first = load_snapshot(built.index_dir).path
    build_index(built, embedder=hashing_embedder, tokenizer=tokenizer, rebuild=True)
    second = load_snapshot(built.index_dir).path
    assert first != second and not first.exists()
    assert (built.index_dir / "CURRENT").read_text().strip() == second.name


def test_missing_index_says_how_to_build_one(tmp_path):
    with pytest.raises(IndexMissingError, match="qa index"):
        load_snapshot(tmp_path / "nowhere")


def test_truncated_file_is_named(built):
    path = load_snapshot(built.index_dir).path / "dense.faiss"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IndexCorruptError, match="dense.faiss"):
        load_snapshot(built.index_dir)


def test_counts_that_disagree_are_reported(built):
    path = load_snapshot(built.index_dir).path
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["counts"]["passages"] = 5
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="counts disagree"):
        load_snapshot(built.index_dir)


def test_garbled_manifest_is_reported(built):
    (load_snapshot(built.index_dir).path / "manifest.json").write_text("{not json")
    with pytest.raises(IndexCorruptError, match="manifest.json"):
        load_snapshot(built.index_dir)
