"""The JSON HTTP API beside the page: `POST /api/ask`, `POST /api/check`, `GET /api/health`.

`/api/ask` returns exactly the `qa ask --json` object and `/api/check` the `qa check --json`
object; OpenAPI documentation is at `/docs`. A bad request gets a 4xx status and
`{"error": "…"}`, never a traceback.

Answers are computed on a pool of threads sized to the cores, never on the event loop
(the models and the index searches release Python's lock while they compute, so two
threads keep two cores busy). The pool takes questions in the order they came; at most
`max_waiting` more may wait for it, and beyond that a request is told 503 with
Retry-After at once rather than queueing without end. Each client (by address) may ask
`per_minute` questions a minute (429 with Retry-After beyond). A request that has not
been answered after `timeout` seconds gets 504; its work finishes and its answer is
cached for the next time it is asked.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException

from .assistant import MAX_QUESTION_CHARS
from .errors import QAError
from .factcheck import MAX_CLAIM_CHARS

if TYPE_CHECKING:
    from .assistant import Assistant
    from .factcheck import FactChecker

__all__ = ["ApiLimits", "create_api"]


@dataclass(frozen=True)
class ApiLimits:
    workers: int = os.cpu_count() or 1  # threads answering
    max_waiting: int = 64  # requests that may wait for a thread; more get 503
    per_minute: int = 60  # questions and claims a client may send a minute; more get 429
    timeout: float = 30.0  # seconds before a request gets 504

    def __post_init__(self) -> None:
        if self.workers < 1 or self.max_waiting < 0 or self.per_minute < 1 or not self.timeout > 0:
            raise ValueError(f"API limits must be positive: {self}")


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Annotated[StrictStr, Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="the question, in Chinese")]
    top_k: Annotated[StrictInt, Field(ge=1, le=20, description="passages to return")] = 5


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    claim: Annotated[StrictStr, Field(min_length=1, max_length=MAX_CLAIM_CHARS, description="a statement to check")]


class _Busy(Exception):
    def __init__(self, status: int, message: str, retry_after: int) -> None:
        self.status, self.message, self.retry_after = status, message, retry_after


class _RateLimiter:
    """At most `per_minute` requests a client within any 60 seconds (a sliding window)."""

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}

    def admit(self, client: str) -> None:
        now = time.monotonic()
        if len(self._seen) > 10_000:  # forget clients idle for a minute, so memory stays bounded
            self._seen = {c: times for c, times in self._seen.items() if times and now - times[-1] < 60}
        times = self._seen.setdefault(client, deque())
        while times and now - times[0] >= 60:
            times.popleft()
        if len(times) >= self._per_minute:
            raise _Busy(429, f"too many requests: at most {self._per_minute} a minute", math.ceil(60 - (now - times[0])))
        times.append(now)


class _Pool:
    """Threads answering in arrival order, and how many requests they have (running or waiting)."""

    def __init__(self, limits: ApiLimits) -> None:
        self._limits = limits
        self._threads = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="qa-api")
        self._taken = 0  # requests running or waiting; only the event loop's thread changes it
        self._seconds = 0.05  # a moving average of the work per request, for Retry-After

    async def run(self, work):
        limits = self._limits
        if self._taken >= limits.workers + limits.max_waiting:
            wait = math.ceil(self._taken * self._seconds / limits.workers)
            raise _Busy(503, "the server is busy; ask again shortly", max(1, wait))
        self._taken += 1
        loop = asyncio.get_running_loop()
        started = time.perf_counter()

        def timed():
            begun = time.perf_counter()
            try:
                return work()
            finally:
                self._seconds = 0.9 * self._seconds + 0.1 * (time.perf_counter() - begun)

        future = loop.run_in_executor(self._threads, timed)
        future.add_done_callback(lambda _: self._release())
        try:
            return await asyncio.wait_for(asyncio.shield(future), limits.timeout)
        except TimeoutError:
            raise _Busy(504, f"no answer within {limits.timeout:g} s (after {time.perf_counter() - started:.1f} s)", 1) from None

    def _release(self) -> None:
        self._taken -= 1

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


def create_api(assistant: Assistant, checker: FactChecker, limits: ApiLimits = ApiLimits()) -> FastAPI:
    """The API as a FastAPI app, onto which the page can be mounted (app.py)."""
    api = FastAPI(
        title="新闻问答 API",
        description="Question answering and fact-checking over the indexed Chinese news articles.",
        version="1",
    )
    pool = _Pool(limits)
    limiter = _RateLimiter(limits.per_minute)
    api.router.on_shutdown.append(pool.close)

    @api.exception_handler(_Busy)
    async def busy(_: Request, error: _Busy) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status, headers={"Retry-After": str(error.retry_after)})

    @api.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return JSONResponse({"error": "the body is not valid JSON"}, status_code=400)
        return JSONResponse({"error": "; ".join(_describe(p) for p in problems)}, status_code=422)

    @api.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    @api.post("/api/ask", summary="Answer a question (the `qa ask --json` object)")
    async def ask(body: AskRequest, request: Request) -> Response:
        question = _text(body.question, "question")
        limiter.admit(_client(request))
        return await _answer(pool, lambda: assistant.ask(question, top_k=body.top_k).to_json())

    @api.post("/api/check", summary="Check a statement's figures, dates and names (the `qa check --json` object)")
    async def check(body: CheckRequest, request: Request) -> Response:
        claim = _text(body.claim, "claim")
        limiter.admit(_client(request))
        return await _answer(pool, lambda: checker.check(claim).to_json())

    @api.get("/api/health", summary="Whether the service answers, and from which index")
    async def health() -> dict:
        try:
            index = assistant.index
            return {"status": "ok", "index": index.name, "model": index.model, "passages": index.passage_count, "reader": assistant.settings.reader}
        except QAError as error:
            return JSONResponse({"status": "unavailable", "error": str(error)}, status_code=503)

    return api


async def _answer(pool: _Pool, work) -> Response:
    """`work`'s JSON object, made and serialised on the pool: encoding a response of five
    passages on the event loop held it (and Python's lock) from the next requests."""
    try:
        body = await pool.run(lambda: json.dumps(work(), ensure_ascii=False).encode("utf-8"))
    except QAError as error:  # the index cannot be read now (a Milvus server down)
        raise _Busy(503, str(error), 5) from None
    return Response(body, media_type="application/json")


def _text(value: str, field: str) -> str:
    if not value.strip():
        raise HTTPException(422, f"{field} is empty")
    return value


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _describe(problem: dict) -> str:
    where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body") or "body"
    return f"{where}: {problem.get('msg', 'invalid')}"
