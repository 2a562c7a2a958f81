"""Faults while indexing: each gives a clear message and loses nothing already indexed."""

import errno
import json

import pytest

import qa.build
import qa.segment
from qa.assistant import Assistant
from qa.build import build_index
from qa.cli import main
from qa.errors import IndexWriteError
from qa.ingest import CorpusFile
from qa.store import current_name, load_snapshot


@pytest.fixture
def indexed(tiny_corpus, settings, hashing_embedder, tokenizer):
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    return settings


def test_a_file_deleted_while_indexing_is_skipped_with_a_warning(indexed, hashing_embedder, tokenizer, monkeypatch):
    listed = qa.build.corpus_files(indexed.corpus_dir) + [CorpusFile("vanished.md", str(indexed.corpus_dir / "vanished.md"))]
    monkeypatch.setattr(qa.build, "corpus_files", lambda folder: listed)
    summary = build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    assert any("vanished.md" in w and "disappeared" in w for w in summary.warnings)
    assert {p.source for p in load_snapshot(indexed.index_dir).live_passages()} == {"rail.md", "park.md"}


def test_a_file_rewritten_while_indexing_is_picked_up_by_the_next_update(indexed, hashing_embedder, tokenizer, monkeypatch):
    target = indexed.corpus_dir / "park.md"
    target.write_text("# 湿地公园\n\n公园占地1300亩。", encoding="utf-8")
    read = qa.build.read_article

    def read_then_rewrite(path, **kwargs):
        article = read(path, **kwargs)
        if path.name == "park.md":
            path.write_text("# 湿地公园\n\n公园占地1400亩。", encoding="utf-8")
        return article

    monkeypatch.setattr(qa.build, "read_article", read_then_rewrite)
    build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    monkeypatch.setattr(qa.build, "read_article", read)
    summary = build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    assert summary.updated == 1
    assert "1400亩" in "".join(p.text for p in load_snapshot(indexed.index_dir).live_passages())


@pytest.mark.parametrize(
    "target, error",
    [("numpy.save", OSError(errno.ENOSPC, "No space left on device")), ("tempfile.mkdtemp", PermissionError(errno.EACCES, "Permission denied"))],
)
def test_a_failed_write_keeps_the_previous_index_serving(indexed, hashing_embedder, tokenizer, monkeypatch, target, error):
    assistant = Assistant(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    before = current_name(indexed.index_dir)

    def fail(*args, **kwargs):
        raise error

    module, name = target.split(".")
    monkeypatch.setattr(getattr(qa.segment, "np" if module == "numpy" else "tempfile"), name, fail)
    (indexed.corpus_dir / "library.md").write_text("# 图书馆\n\n新增藏书五万册。", encoding="utf-8")
    with pytest.raises(IndexWriteError, match=error.strerror) as raised:
        build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    assert "previous index is unchanged" in str(raised.value)
    monkeypatch.undo()
    assert current_name(indexed.index_dir) == before
    named = {s.name for s in load_snapshot(indexed.index_dir).manifest.segments}
    assert {p.name for p in (indexed.index_dir / "segments").iterdir()} == named  # no half-written folder
    assert assistant.ask("公园几点开门？").hits


def test_an_unwritable_index_folder_is_a_clear_error(indexed, hashing_embedder, tokenizer, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(IndexWriteError, match="cannot write to"):
        build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)


def test_a_corrupted_index_gives_json_and_no_traceback(tmp_path, tiny_corpus, capsys):
    index = tmp_path / "index"
    assert main(["index", "--corpus", str(tiny_corpus), "--index", str(index), "--json"]) == 0
    capsys.readouterr()
    segment = load_snapshot(index).segments[0].path
    (segment / "dense.faiss").write_bytes(b"garbage")
    code = main(["ask", "公园几点开门？", "--index", str(index), "--json"])
    out, err = capsys.readouterr()
    response = json.loads(out)
    assert code == 2 and response["no_answer"] is True and response["hits"] == []
    assert "dense.faiss" in response["message"] and "Traceback" not in err
