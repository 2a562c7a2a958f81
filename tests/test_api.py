"""The JSON API: the CLI's contracts over HTTP, clear 4xx for bad requests, and the limits
that keep it answering under load (rate, queue, time)."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from qa.api import ApiLimits, create_api
from qa.assistant import Assistant, Response
from qa.build import build_index
from qa.errors import QAError
from qa.factcheck import FactChecker


@pytest.fixture
def assistant(settings, tiny_corpus, hashing_embedder, tokenizer):
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    return Assistant(settings, embedder=hashing_embedder, tokenizer=tokenizer)


@pytest.fixture
def client(assistant):
    with TestClient(create_api(assistant, FactChecker(assistant))) as client:
        yield client


def test_ask_and_check_return_the_cli_json_objects(client, assistant):
    answered = client.post("/api/ask", json={"question": "公园几点开门？", "top_k": 2})
    assert answered.status_code == 200
    assert answered.json() == assistant.ask("公园几点开门？", top_k=2).to_json()
    assert answered.json()["hits"][0]["answer"]["text"] == "六点"
    checked = client.post("/api/check", json={"claim": "南湖湿地公园占地1500亩"})
    assert checked.status_code == 200
    assert checked.json() == FactChecker(assistant).check("南湖湿地公园占地1500亩").to_json()
    assert checked.json()["verdict"] == "contradicted"


def test_health_names_the_index_and_follows_an_update(client, settings, hashing_embedder, tokenizer):
    before = client.get("/api/health").json()
    assert before["status"] == "ok" and before["model"] == "test-hashing" and before["passages"] == 4
    assert client.post("/api/ask", json={"question": "图书馆新增了多少藏书？"}).json()["no_answer"]
    (settings.corpus_dir / "library.md").write_text("# 图书馆\n\n新城图书馆扩建完成，新增藏书五万册。\n", encoding="utf-8")
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    after = client.get("/api/health").json()
    assert after["index"] != before["index"] and after["passages"] == 5
    # the cached answer of the old index is not served from the new one
    answer = client.post("/api/ask", json={"question": "图书馆新增了多少藏书？"}).json()
    assert answer["hits"][0]["answer"]["text"] == "五万册"


def test_a_hit_names_its_article_and_the_page_it_was_printed_on(settings, tiny_corpus, hashing_embedder, tokenizer):
    (tiny_corpus / "page.md").write_text(
        "# 城市版\n\n## 图书馆扩建完成\n\n新城图书馆扩建完成，新增藏书五万册。\n\n记者 张三\n\n"
        "## 夜市开张\n\n河畔夜市今晚开张，设摊位一百二十个。\n\n通讯员 李四\n",
        encoding="utf-8",
    )
    built = build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    unchanged = build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    assert (built.files, built.articles) == (unchanged.files, unchanged.articles) == (3, 4)  # the page holds two
    assert unchanged.contents() == "4 articles in 3 files, 6 passages"
    assistant = Assistant(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    with TestClient(create_api(assistant, FactChecker(assistant))) as client:
        hit = client.post("/api/ask", json={"question": "图书馆新增了多少藏书？"}).json()["hits"][0]
        other = client.post("/api/ask", json={"question": "公园几点开门？"}).json()["hits"][0]
    assert (hit["article"], hit["page"], hit["source"]) == ("图书馆扩建完成", "城市版", "page.md")
    assert other["article"] == "湿地公园开园" and "page" not in other  # like date and url: only when known


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ('{"question": 5}', 422, "question: Input should be a valid string"),
        ('{"question": "公园几点开门？", "top_k": "3"}', 422, "top_k: Input should be a valid integer"),
        ('{"question": "公园几点开门？", "top_k": 0}', 422, "top_k: Input should be greater than or equal to 1"),
        ('{"question": "公园", "page": 2}', 422, "page: Extra inputs are not permitted"),
        ('{"question": "   "}', 422, "question is empty"),
        ('{"top_k": 3}', 422, "question: Field required"),
        ('{"question": "公园', 400, "the body is not valid JSON"),
        ('{"question": "' + "问" * 100_000 + '"}', 422, "question: String should have at most 500 characters"),
    ],
)
def test_a_bad_request_gets_a_4xx_and_a_message(client, body, status, message):
    response = client.post("/api/ask", content=body.encode(), headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.json() == {"error": message}


def test_a_claim_too_long_or_of_the_wrong_type_is_refused(client):
    assert client.post("/api/check", json={"claim": "数" * 501}).status_code == 422
    assert client.post("/api/check", json={"claim": ["a"]}).json() == {"error": "claim: Input should be a valid string"}


def test_a_client_over_its_rate_gets_429_with_retry_after(assistant):
    with TestClient(create_api(assistant, FactChecker(assistant), ApiLimits(per_minute=2))) as client:
        codes = [client.post("/api/ask", json={"question": "公园几点开门？"}).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        refused = client.post("/api/check", json={"claim": "公园占地1200亩"})
        assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60
        assert refused.json() == {"error": "too many requests: at most 2 a minute"}


class SlowAssistant:
    """Answers after `seconds`, or fails as a Milvus server that went away would."""

    def __init__(self, seconds: float, failure: QAError | None = None) -> None:
        self.seconds, self.failure, self.started = seconds, failure, threading.Event()

    def ask(self, question: str, *, top_k: int) -> Response:
        self.started.set()
        time.sleep(self.seconds)
        if self.failure:
            raise self.failure
        return Response(question, (), True)


async def _post_together(api, count: int) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await asyncio.gather(*(client.post("/api/ask", json={"question": f"问题{i}"}) for i in range(count)))


def test_a_full_queue_answers_503_with_retry_after_at_once():
    slow = SlowAssistant(0.5)
    api = create_api(slow, None, ApiLimits(workers=1, max_waiting=1))
    started = time.perf_counter()
    responses = asyncio.run(_post_together(api, 4))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 503, 503]
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.json() == {"error": "the server is busy; ask again shortly"} and int(busy.headers["Retry-After"]) >= 1
    assert time.perf_counter() - started < 1.5  # the two refused were not kept waiting


def test_a_slow_answer_gets_504_and_a_failing_index_503():
    assert [r.status_code for r in asyncio.run(_post_together(create_api(SlowAssistant(1.0), None, ApiLimits(timeout=0.2)), 1))] == [504]
    down = create_api(SlowAssistant(0.0, QAError("Milvus at http://x:1 failed")), None)
    [response] = asyncio.run(_post_together(down, 1))
    assert response.status_code == 503 and response.json() == {"error": "Milvus at http://x:1 failed"}
