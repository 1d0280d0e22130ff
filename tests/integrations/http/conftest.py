"""A real HTTP server on 127.0.0.1 that records what the http executor sends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpServer
from remediator_integrations.http import HttpExecutor, HttpSettings


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: str
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class Endpoint:
    """The test server: what it saw, and what it answers next."""

    base: str
    seen: list[Seen] = field(default_factory=list)
    status: int = 202
    reply: bytes = b'{"ok": true}'
    slow_started: asyncio.Event = field(default_factory=asyncio.Event)
    slow_cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
async def endpoint(aiohttp_server: AiohttpServer) -> Endpoint:
    """Records every request; `/slow/...` never answers until the client goes away."""
    state = Endpoint(base="")

    async def record(request: web.Request) -> web.Response:
        state.seen.append(
            Seen(
                method=request.method,
                path=request.path,
                query=request.query_string,
                headers=CIMultiDict(request.headers),
                body=await request.read(),
            )
        )
        return web.Response(status=state.status, body=state.reply)

    async def slow(request: web.Request) -> web.Response:
        state.slow_started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            # TestServer cancels handlers whose client disconnected.
            state.slow_cancelled.set()
            raise
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/slow/{tail:.*}", slow)
    app.router.add_route("*", "/{tail:.*}", record)
    server = await aiohttp_server(app, host="127.0.0.1")
    state.base = f"http://127.0.0.1:{server.port}"
    return state


@pytest.fixture
async def make_executor() -> AsyncIterator[Callable[..., HttpExecutor]]:
    """HttpExecutors with the given settings, closed after the test."""
    made: list[HttpExecutor] = []

    def make(**settings: Any) -> HttpExecutor:
        executor = HttpExecutor(HttpSettings.model_validate(settings))
        made.append(executor)
        return executor

    yield make
    for executor in made:
        await executor.close()
