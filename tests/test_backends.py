"""One contract, two backends: the local index folder and Milvus (Milvus Lite in a file, or
the server MILVUS_URI names). Same questions, same answers; updates, removals and a
rebuild seen by a running assistant; a clear error when Milvus cannot be reached."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import pytest

from qa.assistant import Assistant
from qa.backend import Backend
from qa.build import build_index
from qa.errors import QAError

from .conftest import free_port

NEW_ARTICLE = "# 图书馆扩建\n\n新城图书馆扩建完成，新增藏书五万册。周末开放时间延长到晚上九点。\n"
QUESTIONS = ("从新城站到中心站要多久？", "公园占地多少亩？", "车站每天停靠多少列车？", "公园几点开门？")


def _drop_everything(backend: Backend) -> None:
    """A shared server starts each test empty (a Lite file is new for each test anyway)."""
    from qa.milvus import ALIAS, connect

    for uri in backend.nodes:
        client = connect(uri)
        if ALIAS in client.list_aliases().get("aliases", []):
            client.drop_alias(ALIAS)
        for name in client.list_collections():
            if name.startswith(ALIAS):
                client.drop_collection(name)


@pytest.fixture(params=["local", "milvus"])
def backend_settings(request, settings, tiny_corpus, tmp_path):
    if request.param == "local":
        return settings
    backend = Backend.parse("milvus:" + (os.environ.get("MILVUS_URI") or str(tmp_path / "qa.db")))
    if os.environ.get("MILVUS_URI"):
        _drop_everything(backend)
        request.addfinalizer(lambda: _drop_everything(backend))
    return dataclasses.replace(settings, backend=backend)


@pytest.fixture
def indexed(backend_settings, hashing_embedder, tokenizer):
    build_index(backend_settings, embedder=hashing_embedder, tokenizer=tokenizer)
    hashing_embedder.calls.clear()
    return backend_settings


def _answers(assistant: Assistant) -> list[tuple]:
    out = []
    for question in QUESTIONS:
        response = assistant.ask(question)
        hit = response.answer_hit
        out.append((question, [h.passage.id for h in response.hits], hit.answer.text if hit else None))
    return out


def test_both_backends_give_the_same_passages_and_answers(settings, tiny_corpus, tmp_path, hashing_embedder, tokenizer):
    milvus = dataclasses.replace(settings, backend=Backend.parse(f"milvus:{tmp_path / 'qa.db'}"))
    answers = []
    for chosen in (settings, milvus):
        build_index(chosen, embedder=hashing_embedder, tokenizer=tokenizer)
        answers.append(_answers(Assistant(chosen, embedder=hashing_embedder, tokenizer=tokenizer)))
    assert answers[0] == answers[1]
    assert [a[2] for a in answers[0]] == ["18分钟", "1200亩", "40列", "六点"]


def test_an_added_article_is_found_by_the_running_assistant(indexed, hashing_embedder, tokenizer):
    assistant = Assistant(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    before = assistant.index.name
    (indexed.corpus_dir / "library.md").write_text(NEW_ARTICLE, encoding="utf-8")
    summary = build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    assert (summary.added, summary.unchanged, summary.articles) == (1, 2, 3)
    top = assistant.ask("图书馆新增了多少藏书？").hits[0]
    assert assistant.index.name != before
    assert top.passage.source == "library.md" and top.answer.text == "五万册"
    assert assistant.article("library.md").title == "图书馆扩建"


def test_a_changed_article_replaces_its_old_passages_and_embeds_only_what_changed(indexed, hashing_embedder, tokenizer):
    assistant = Assistant(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    path = indexed.corpus_dir / "rail.md"
    path.write_text(path.read_text(encoding="utf-8").replace("40列", "48列"), encoding="utf-8")
    summary = build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    assert (summary.updated, summary.unchanged) == (1, 1)
    assert summary.passages == 4
    response = assistant.ask("车站每天停靠多少列车？")
    assert response.answer_hit.answer.text == "48列"
    assert not any("40列" in h.passage.text for h in response.hits)


def test_a_removed_article_is_gone(indexed, hashing_embedder, tokenizer):
    assistant = Assistant(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    (indexed.corpus_dir / "park.md").unlink()
    summary = build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    assert (summary.removed, summary.articles, summary.passages) == (1, 1, 2)
    assert {h.passage.source for h in assistant.ask("公园几点开门？").hits} == {"rail.md"}
    assert [a.path for a in assistant.index.articles()] == ["rail.md"]
    assert assistant.article("park.md") is None


def test_an_untouched_corpus_writes_nothing(indexed, hashing_embedder, tokenizer):
    summary = build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    assert summary.up_to_date and summary.embedded == 0 and hashing_embedder.calls == []


def test_a_file_touched_but_unchanged_is_not_read_twice(indexed, hashing_embedder, tokenizer):
    path = indexed.corpus_dir / "park.md"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer).unchanged == 2
    assert build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer).up_to_date
    assert hashing_embedder.calls == []


def test_a_rebuild_switches_versions_while_questions_are_answered(indexed, hashing_embedder, tokenizer):
    assistant = Assistant(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    in_flight = assistant._current()  # a question that started before the rebuild
    before = _answers(assistant)
    summary = build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer, rebuild=True)
    assert summary.rebuilt == "asked to rebuild"
    # the replaced version still answers the question in flight, the new one the next
    assert in_flight.retriever.search("公园几点开门？", k=2)
    assert _answers(assistant) == before
    assert assistant.index.name != in_flight.index.name


def test_a_setting_that_changes_the_index_rebuilds_it(indexed, hashing_embedder, tokenizer):
    changed = dataclasses.replace(indexed, max_passage_chars=300)
    summary = build_index(changed, embedder=hashing_embedder, tokenizer=tokenizer)
    assert summary.rebuilt == "chunking settings changed from {\"max_chars\": 400, \"min_chars\": 10} to {\"max_chars\": 300, \"min_chars\": 10}"


def test_an_unreachable_milvus_is_a_clear_error_and_the_cli_says_so(settings, tiny_corpus, tmp_path):
    down = dataclasses.replace(settings, backend=Backend.parse("milvus:http://127.0.0.1:9"))
    with pytest.raises(QAError, match="cannot reach Milvus at http://127.0.0.1:9"):
        Assistant(down)
    result = subprocess.run(
        [sys.executable, "-m", "qa", "ask", "公园几点开门？", "--backend", "milvus:http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "cannot reach Milvus at http://127.0.0.1:9" in result.stderr


def test_a_backend_is_named_local_or_milvus_uri():
    assert Backend.parse("local").is_local
    assert Backend.parse("milvus:qa.db").nodes == ("qa.db",)
    assert Backend.parse("milvus:http://a:19530,http://b:19530").nodes == ("http://a:19530", "http://b:19530")
    assert str(Backend.parse("milvus:http://127.0.0.1:19530")) == "milvus:http://127.0.0.1:19530"
    for wrong in ("milvus:", "milvus:a.db,", "milvus:a.db,a.db", "elastic:http://x", ""):
        with pytest.raises(ValueError, match="--backend must be"):
            Backend.parse(wrong)


MORE_ARTICLES = {
    "library.md": NEW_ARTICLE,
    "school.md": "# 新城中学开学\n\n新城中学今年秋季开学，招收新生480人。学校有实验室12间，操场可容纳两千人。\n",
    "museum.md": "# 运河博物馆\n\n运河博物馆收藏文物3000余件。博物馆每周一闭馆，其余时间免费参观。\n",
}


class LiteServers:
    """Milvus Lite servers on loopback ports, each with its own data folder."""

    def __init__(self, folder, count: int) -> None:
        from qa.milvus import connect

        self.processes, self.uris = [], []
        for number in range(count):
            port = free_port()
            command = [os.path.join(os.path.dirname(sys.executable), "milvus-lite"), "server"]
            command += ["--data-dir", str(folder / f"node{number}"), "--host", "127.0.0.1", "--port", str(port)]
            self.processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.uris.append(f"http://127.0.0.1:{port}")
        for uri in self.uris:
            deadline = time.monotonic() + 60
            while True:
                try:
                    connect(uri).list_collections()
                    break
                except QAError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise
                    time.sleep(0.5)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture
def two_servers(tmp_path):
    servers = LiteServers(tmp_path, 2)
    yield servers.uris
    servers.stop()


@pytest.fixture
def one_server(tmp_path):
    servers = LiteServers(tmp_path, 1)
    yield servers
    servers.stop()


def test_two_nodes_share_the_articles_and_answer_as_one_does(settings, tiny_corpus, tmp_path, two_servers, hashing_embedder, tokenizer):
    from qa.milvus import route

    for name, text in MORE_ARTICLES.items():
        (tiny_corpus / name).write_text(text, encoding="utf-8")
    one = dataclasses.replace(settings, backend=Backend.parse(f"milvus:{tmp_path / 'one.db'}"))
    two = dataclasses.replace(settings, backend=Backend.parse("milvus:" + ",".join(two_servers)))
    questions = QUESTIONS + ("新城中学招收多少新生？", "博物馆收藏多少件文物？", "图书馆新增了多少藏书？")
    answers = []
    for chosen in (one, two):
        summary = build_index(chosen, embedder=hashing_embedder, tokenizer=tokenizer)
        assert (summary.articles, summary.passages) == (5, 7)
        assistant = Assistant(chosen, embedder=hashing_embedder, tokenizer=tokenizer)
        answers.append([(q, [h.passage.id for h in r.hits], r.answer_hit.answer.text if r.answer_hit else None) for q in questions for r in [assistant.ask(q)]])
    # the same best passage and answer; lower hits may trade places, as each node's BM25
    # counts its own documents (Milvus keeps no statistics across nodes)
    assert [(q, hits[0], answer) for q, hits, answer in answers[0]] == [(q, hits[0], answer) for q, hits, answer in answers[1]]
    assert all(sorted(a[1]) == sorted(b[1]) for a, b in zip(*answers))
    assert [a[2] for a in answers[1][-3:]] == ["480人", "3000余件", "五万册"]
    # each node holds the articles routed to it, and only those
    from qa.milvus import MilvusSource

    for number, uri in enumerate(two_servers):
        held = {a.path for a in MilvusSource(Backend.parse("milvus:" + uri)).open().articles()}
        assert held == {name for name in ["rail.md", "park.md", *MORE_ARTICLES] if route(name, 2) == number} and held

    # an update reaches the node that holds the article
    path = tiny_corpus / "school.md"
    path.write_text(path.read_text(encoding="utf-8").replace("480人", "520人"), encoding="utf-8")
    summary = build_index(two, embedder=hashing_embedder, tokenizer=tokenizer)
    assert (summary.updated, summary.unchanged) == (1, 4)
    assert assistant.ask("新城中学招收多少新生？").answer_hit.answer.text == "520人"


def test_a_server_that_stops_is_reported_and_the_app_says_so(settings, tiny_corpus, one_server, hashing_embedder, tokenizer):
    served = dataclasses.replace(settings, backend=Backend.parse("milvus:" + one_server.uris[0]))
    build_index(served, embedder=hashing_embedder, tokenizer=tokenizer)
    assistant = Assistant(served, embedder=hashing_embedder, tokenizer=tokenizer)
    assert assistant.ask("公园几点开门？").answer_hit.answer.text == "六点"
    one_server.stop()
    with pytest.raises(QAError, match=f"Milvus at {one_server.uris[0]} failed"):
        assistant.ask("公园占地多少亩？")
    with pytest.raises(QAError, match=f"Milvus at {one_server.uris[0]}"):
        build_index(served, embedder=hashing_embedder, tokenizer=tokenizer)


def test_an_update_that_dies_before_its_records_is_completed_by_the_next(indexed, hashing_embedder, tokenizer, monkeypatch):
    if indexed.backend.is_local:
        pytest.skip("the local index commits atomically (tests/test_update.py kills it for real)")
    from qa import milvus

    path = indexed.corpus_dir / "rail.md"
    path.write_text(path.read_text(encoding="utf-8").replace("40列", "48列").replace("18分钟", "16分钟"), encoding="utf-8")
    with monkeypatch.context() as patched:
        patched.setattr(milvus._Writer, "finish", lambda self: (_ for _ in ()).throw(QAError("died")))
        with pytest.raises(QAError, match="died"):
            build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    # the record died with the write, so the article counts as new; its old passages are gone
    summary = build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    assert (summary.added, summary.unchanged, summary.passages) == (1, 1, 4)
    assistant = Assistant(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    texts = [h.passage.text for h in assistant.ask("车站每天停靠多少列车？", top_k=10).hits]
    assert any("48列" in t for t in texts) and not any("40列" in t or "18分钟" in t for t in texts)
    assert assistant.article("rail.md").passages == 2
    assert build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer).up_to_date


def test_no_question_fails_while_a_rebuild_runs(indexed, hashing_embedder, tokenizer):
    import threading

    assistant = Assistant(indexed, embedder=hashing_embedder, tokenizer=tokenizer)
    failures, answered, done = [], [], threading.Event()

    def keep_asking():
        while not done.is_set():
            try:
                answered.append(assistant.ask("公园几点开门？", cached=False).answer_hit.answer.text)
            except Exception as error:  # any failure is what this test looks for
                failures.append(repr(error))

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        for _ in range(2):
            build_index(indexed, embedder=hashing_embedder, tokenizer=tokenizer, rebuild=True)
    finally:
        done.set()
        asker.join(timeout=60)
    assert failures == [] and answered and set(answered) == {"六点"}
