"""Keeping the index current: incremental cost, crash safety, the writer lock, live reload."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from qa.assistant import Assistant
from qa.build import build_index
from qa.errors import IndexBusyError, IndexCorruptError
from qa.store import index_lock, load_snapshot
from qa.watch import watch

NEW_ARTICLE = "# 图书馆扩建\n\n新城图书馆扩建完成，新增藏书五万册。周末开放时间延长到晚上九点。\n"


@pytest.fixture
def indexed(tiny_corpus, settings, hashing_embedder, tokenizer):
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    hashing_embedder.calls.clear()
    return settings


def embedded_texts(embedder):
    return [text for call in embedder.calls for text in call]


def test_adding_an_article_embeds_only_its_passages_and_it_is_found(indexed, hashing_embedder, tokenizer):
    assistant = Assistant(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    (indexed.corpus_dir / "library.md").write_text(NEW_ARTICLE, encoding="utf-8")
    summary = build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    assert (summary.added, summary.updated, summary.removed, summary.unchanged) == (1, 0, 0, 2)
    assert summary.embedded == 1 and summary.articles == 3
    assert embedded_texts(hashing_embedder) == ["新城图书馆扩建完成，新增藏书五万册。", "周末开放时间延长到晚上九点。"]
    top = assistant.ask("图书馆新增了多少藏书？").hits[0]  # the running assistant follows
    assert top.passage.source == "library.md" and top.answer.text == "五万册"


def test_removing_an_article_removes_it(indexed, hashing_embedder, tokenizer):
    (indexed.corpus_dir / "park.md").unlink()
    summary = build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    assert (summary.removed, summary.unchanged, summary.embedded) == (1, 1, 0)
    assert {p.source for p in load_snapshot(indexed.index_dir).live_passages()} == {"rail.md"}


def test_changing_a_paragraph_embeds_only_the_changed_passage(indexed, hashing_embedder, tokenizer):
    path = indexed.corpus_dir / "rail.md"
    path.write_text(path.read_text(encoding="utf-8").replace("40列", "48列"), encoding="utf-8")
    summary = build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    assert (summary.updated, summary.unchanged, summary.embedded) == (1, 1, 1)
    assert embedded_texts(hashing_embedder) == ["车站每天停靠列车48列，早晚高峰加开班次。"]


def test_an_untouched_corpus_is_not_read_embedded_or_rewritten(indexed, hashing_embedder, tokenizer):
    before = load_snapshot(indexed.index_dir).name
    os.utime(indexed.corpus_dir / "park.md")  # touched, same bytes
    summary = build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    assert summary.up_to_date and summary.embedded == 0 and hashing_embedder.calls == []
    assert load_snapshot(indexed.index_dir).name == before


def test_a_rebuild_or_another_model_rebuilds_everything(indexed, hashing_embedder, tokenizer):
    summary = build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer, rebuild=True)
    assert summary.rebuilt == "asked to rebuild" and summary.embedded == summary.passages == 4


def test_an_unreadable_new_version_keeps_what_was_indexed(indexed, hashing_embedder, tokenizer):
    bad = indexed.corpus_dir / "park.md"
    bad.write_bytes(bytes(range(128, 256)) * 8)
    summary = build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    assert any("kept the version of park.md" in w for w in summary.warnings)
    assert "1200亩" in "".join(p.text for p in load_snapshot(indexed.index_dir).live_passages())


def test_one_writer_at_a_time(indexed, hashing_embedder, tokenizer):
    with index_lock(indexed.index_dir):
        with pytest.raises(IndexBusyError, match="another build"):
            build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer, rebuild=True)
    build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer, rebuild=True)  # free again


def test_questions_in_flight_finish_on_their_commit_which_is_removed_once_let_go(indexed, hashing_embedder, tokenizer):
    assistant = Assistant(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    in_flight = assistant._current()
    old_commit = indexed.index_dir / "commits" / in_flight.index.name
    (indexed.corpus_dir / "library.md").write_text(NEW_ARTICLE, encoding="utf-8")
    build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    assert assistant.index.name != in_flight.index.name
    assert old_commit.exists()  # held by the question in flight …
    results = in_flight.retriever.search("公园", k=1)
    assert "公园" in in_flight.retriever.passages(results)[0].text  # … which completes from it
    in_flight.index.close()
    (indexed.corpus_dir / "library.md").unlink()
    build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    assert not old_commit.exists()  # let go: the next write removes it


def test_a_broken_new_commit_leaves_the_old_one_serving(indexed, hashing_embedder, tokenizer, caplog):
    assistant = Assistant(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    serving = assistant.index.name
    (indexed.index_dir / "commits" / "commit-99999999.json").write_text("{", encoding="utf-8")
    (indexed.index_dir / "CURRENT").write_text("commit-99999999.json\n", encoding="utf-8")
    assert assistant.ask("公园几点开门？").hits
    assert assistant.index.name == serving
    assert "keeping index version" in caplog.text


def test_corrupted_contents_are_named_and_nothing_is_deleted(indexed):
    target = next((indexed.index_dir / "segments").glob("*/docs.npy"))
    target.write_bytes(target.read_bytes()[:-4])
    with pytest.raises(IndexCorruptError, match="docs.npy"):
        load_snapshot(indexed.index_dir)
    assert target.exists() and len(list(target.parent.iterdir())) >= 10


def test_watch_updates_the_index_after_files_change(indexed, hashing_embedder):
    updates, errors, stop = [], [], threading.Event()
    worker = threading.Thread(
        target=watch,
        kwargs=dict(
            settings=indexed,
            debounce=0.3,
            on_update=updates.append,
            on_error=errors.append,
            stop=stop,
            embedder=hashing_embedder,
        ),
    )
    worker.start()
    try:
        _wait_for(lambda: updates, "the start-up check")
        assert updates[0].up_to_date
        (indexed.corpus_dir / "library.md").write_text(NEW_ARTICLE, encoding="utf-8")
        _wait_for(lambda: any(u.added for u in updates), "the new file")
        (indexed.corpus_dir / "library.md").unlink()
        _wait_for(lambda: any(u.removed for u in updates), "the deletion")
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not errors
    assert {p.source for p in load_snapshot(indexed.index_dir).live_passages()} == {"rail.md", "park.md"}


def _wait_for(condition, what, seconds=15.0):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _qa(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "qa", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_killed_rebuilds_updates_and_merges_never_change_the_answer_and_the_next_run_cleans_up(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for n in range(60):
        lines = [f"第{n}号新闻的第{k}段讲述了城市建设的进展，项目投资{n * 10 + k}亿元，预计{k + 1}年完成。" for k in range(12)]
        (corpus / f"news-{n:02d}.md").write_text(f"# 新闻{n}\n\n" + "\n\n".join(lines), encoding="utf-8")
    index = tmp_path / "index"
    # USE builds this corpus in about 3 s, which the kill delays below are spread over
    fast = ("--model", "use-multilingual")
    assert _qa("index", "--corpus", corpus, "--index", index, *fast, "--json").wait(timeout=300) == 0

    def answer():
        process = _qa("ask", "第7号新闻的第3段项目投资多少？", "--index", index, "--json")
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        first = json.loads(out)["hits"][0]
        return first["passage_id"], first["answer"] and first["answer"]["text"]

    def note(n: int, version: int) -> None:  # an unrelated article, added or changed
        text = "".join(f"公园第{k}条步道今年{version}月开放，全长{k + version}公里。" for k in range(30))
        (corpus / f"park-{n}.md").write_text(f"# 公园{n}\n\n{text}\n", encoding="utf-8")

    expected = answer()
    assert expected[1] == "73亿元"
    killed = 0
    number = 0
    for kind in ("--rebuild", "update", "--optimize"):
        duration = None
        # one run to completion, timed; then five killed at 50–90% of that time, when
        # most of the run is writing (the first half is mostly starting up)
        for share in (None, 0.5, 0.6, 0.7, 0.8, 0.9):
            number += 1
            if kind == "update":
                note(number, 2)
            if kind == "--optimize":  # a few small segments for the merge to work on
                for n in range(3):
                    note(100 + n, number)
                    assert _qa("index", "--corpus", corpus, "--index", index, *fast, "--no-merge").wait(timeout=120) == 0
            flags = () if kind == "update" else (kind,)
            started = time.monotonic()
            run = _qa("index", "--corpus", corpus, "--index", index, *fast, *flags, "--json")
            if share is None:
                assert run.wait(timeout=120) == 0
                duration = time.monotonic() - started
            else:
                time.sleep(share * duration)
                if run.poll() is None:
                    os.kill(run.pid, signal.SIGKILL)
                    killed += 1
                run.wait(timeout=60)
            assert answer() == expected
    assert killed >= 10  # the kills landed while the writes were running
    final = _qa("index", "--corpus", corpus, "--index", index, *fast, "--optimize", "--json")
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    assert answer() == expected
    # nothing is left but what the current commit names
    manifest = json.loads((index / "commits" / (index / "CURRENT").read_text().strip()).read_text())
    assert [p.name for p in (index / "commits").iterdir()] == [(index / "CURRENT").read_text().strip()]
    named = {s["name"] for s in manifest["segments"]}
    assert {p.name for p in (index / "segments").iterdir()} == named
    with sqlite3.connect(index / "passages.sqlite") as database:
        assert {f"{row[0]:08d}" for row in database.execute("SELECT DISTINCT key >> 32 FROM passages")} == named


def test_a_repeated_question_is_answered_from_the_cache_until_the_index_changes(indexed, hashing_embedder, tokenizer):
    assistant = Assistant(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    first = assistant.ask("图书馆新增了多少藏书？")
    assert assistant.ask("图书馆新增了多少藏书？") is first
    assert assistant.ask("图书馆新增了多少藏书？", cached=False) is not first
    (indexed.corpus_dir / "library.md").write_text(NEW_ARTICLE, encoding="utf-8")
    build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    after = assistant.ask("图书馆新增了多少藏书？")  # a new snapshot: answered afresh
    assert after is not first and "五万册" in after.hits[0].passage.text
