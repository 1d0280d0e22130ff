"""A local server with the Prometheus HTTP query API's contract, for verification tests.

`POST /api/v1/query` with a form `query` (GET with `?query=` too), answered with the exact
body shapes Prometheus uses: `{"status": "success", "data": {"resultType": "vector",
"result": [...]}}`, or `{"status": "error", "errorType": "bad_data", "error": ...}` with its
status (400 bad_data, 422 execution, 503 timeout, ...). Tests script the answers per call;
every request is recorded. The real Prometheus binary is exercised by tests/e2e.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpServer

QUERY_PATH = "/api/v1/query"


def series(count: int, **labels: str) -> dict[str, Any]:
    """A success answer with `count` vector samples (value 1) carrying `labels`."""
    result: list[dict[str, Any]] = [
        {"metric": labels | {"n": str(n)}, "value": [time.time(), "1"]} for n in range(count)
    ]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def error(status: int, error_type: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"status": "error", "errorType": error_type, "error": message}


HEALTHY = series(0)
BAD_QUERY = error(400, "bad_data", 'invalid parameter "query": 1:5: parse error: unexpected "}"')
TIMEOUT = error(503, "timeout", "query timed out in expression evaluation")


@dataclass
class FakePrometheus:
    """What the server saw, and what it answers next (the last answer repeats)."""

    url: str = ""
    queries: list[str] = field(default_factory=list)
    headers: list[CIMultiDict[str]] = field(default_factory=list)
    answers: list[tuple[int, Any]] = field(default_factory=lambda: [(200, HEALTHY)])

    def answer(self, *answers: dict[str, Any] | tuple[int, Any]) -> None:
        """Script the next answers: a body (status 200) or (status, body)."""
        self.answers = [a if isinstance(a, tuple) else (200, a) for a in answers]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = await request.post() if request.method == "POST" else request.query
        query = form.get("query")
        if not isinstance(query, str) or not query:
            status, body = error(400, "bad_data", 'invalid parameter "query": empty')
            return web.json_response(body, status=status)
        self.queries.append(query)
        self.headers.append(CIMultiDict(request.headers))
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(body, bytes):
            return web.Response(status=status, body=body, content_type="text/plain")
        return web.json_response(body, status=status)


@pytest.fixture
async def prometheus_api(aiohttp_server: AiohttpServer) -> FakePrometheus:
    fake = FakePrometheus()
    app = web.Application()
    app.router.add_route("*", QUERY_PATH, fake.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    fake.url = f"http://127.0.0.1:{server.port}"
    return fake
