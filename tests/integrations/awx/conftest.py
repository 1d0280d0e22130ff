"""A local server on 127.0.0.1 that enforces the AWX / Controller API v2 contract the awx
executor relies on: bearer (and basic) authentication, job template lookup by name, launch
with prompt-on-launch checks, a job state machine the test drives, stdout and cancel."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from remediator_integrations.awx import AwxExecutor, AwxSettings

TOKEN = "good-token"
READ_ONLY_TOKEN = "viewer-token"
BASIC = ("admin", "s3cret")
USER = web.RequestKey("user", str)

RECAP = (
    "PLAY [restart] *****************************************************************\n\n"
    "TASK [restart the service] ****************************************************\n"
    "changed: [db-1]\n\n"
    "PLAY RECAP *********************************************************************\n"
    "db-1                       : ok=2    changed=1    unreachable=0    failed=0    "
    "skipped=0    rescued=0    ignored=0   \n"
)
FAILED_RECAP = (
    "TASK [restart the service] ****************************************************\n"
    'fatal: [db-1]: FAILED! => {"changed": false, "msg": "Unit postgresql.service not found."}\n\n'
    "PLAY RECAP *********************************************************************\n"
    "db-1                       : ok=1    changed=0    unreachable=0    failed=1    "
    "skipped=0    rescued=0    ignored=0   \n"
)


@dataclass
class Template:
    id: int
    name: str
    ask_variables_on_launch: bool = True
    ask_limit_on_launch: bool = True


@dataclass
class Job:
    id: int
    template: Template
    extra_vars: dict[str, Any]
    limit: str
    script: list[str]
    """Statuses the next GETs return, in order; the last one stays."""
    stdout: str
    status: str = "pending"
    polls: int = 0
    cancel_requests: int = 0

    def as_json(self) -> dict[str, Any]:
        finished = self.status in ("successful", "failed", "error", "canceled")
        return {
            "id": self.id,
            "type": "job",
            "url": f"/api/v2/jobs/{self.id}/",
            "name": self.template.name,
            "job_template": self.template.id,
            "status": self.status,
            "failed": self.status in ("failed", "error"),
            "elapsed": 12.34 if finished else 0.0,
            "job_explanation": "",
            "extra_vars": json.dumps(self.extra_vars),
            "limit": self.limit,
        }


@dataclass
class Controller:
    """The server's state: what it has seen, and what the test makes it answer next."""

    base: str = ""
    templates: dict[int, Template] = field(
        default_factory=lambda: {
            7: Template(7, "restart-db"),
            8: Template(8, "no-prompts", ask_variables_on_launch=False, ask_limit_on_launch=False),
            9: Template(9, "twin"),
            10: Template(10, "twin"),
        }
    )
    jobs: dict[int, Job] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(method, path with query) of every request, in order."""
    launches: list[dict[str, Any]] = field(default_factory=list)
    """The JSON body of every accepted launch."""
    job_script: list[str] = field(default_factory=lambda: ["pending", "running", "successful"])
    """The status sequence of the next launched job."""
    job_stdout: str = RECAP
    scripted: dict[str, deque[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    """Per endpoint kind (lookup, launch, job, stdout, cancel): answers given instead of the
    real one, first in first out, e.g. {"launch": deque([(429, {"Retry-After": "1"})])}."""
    launch_delay: float = 0.0
    launch_started: asyncio.Event = field(default_factory=asyncio.Event)

    def script(self, kind: str, status: int, headers: dict[str, str] | None = None) -> None:
        self.scripted.setdefault(kind, deque()).append((status, headers or {}))

    def cancels(self) -> list[str]:
        return [path for method, path in self.requests if method == "POST" and "/cancel/" in path]


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"detail": detail}, status=status, headers=headers)


def _user(request: web.Request) -> str | None:
    """Who the Authorization header names, as the controller checks it."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme == "Bearer":
        return {TOKEN: "admin", READ_ONLY_TOKEN: "viewer"}.get(credentials)
    if scheme == "Basic":
        try:
            user, _, password = base64.b64decode(credentials).decode().partition(":")
        except ValueError:
            return None
        return "admin" if (user, password) == BASIC else None
    return None


@pytest.fixture
async def controller(aiohttp_server: AiohttpServer) -> Controller:
    state = Controller()
    next_job = iter(range(100, 10_000))

    @web.middleware
    async def contract(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        state.requests.append((request.method, request.path_qs))
        if not request.headers.get("Authorization"):
            return _error(401, "Authentication credentials were not provided.")
        user = _user(request)
        if user is None:
            return _error(401, "Invalid token.", {"WWW-Authenticate": 'Bearer realm="api"'})
        request[USER] = user
        kind = request.match_info.route.name or ""
        queue = state.scripted.get(kind)
        if queue:
            status, headers = queue.popleft()
            return _error(status, f"scripted {status}", headers)
        return await handler(request)

    async def lookup(request: web.Request) -> web.Response:
        name = request.query.get("name")
        found = [t for t in state.templates.values() if name is None or t.name == name]
        results = [{"id": t.id, "type": "job_template", "name": t.name} for t in found]
        return web.json_response(
            {"count": len(results), "next": None, "previous": None, "results": results}
        )

    async def launch(request: web.Request) -> web.Response:
        template = state.templates.get(int(request.match_info["id"]))
        if template is None:
            return _error(404, "Not found.")
        if request[USER] != "admin":
            return _error(403, "You do not have permission to perform this action.")
        state.launch_started.set()
        if state.launch_delay:
            await asyncio.sleep(state.launch_delay)
        if request.content_type != "application/json":
            return web.json_response({"detail": "Unsupported media type"}, status=415)
        body = await request.json()
        if not isinstance(body, dict):
            return web.json_response({"detail": "Expected a JSON object"}, status=400)
        extra_vars = body.get("extra_vars", {})
        if isinstance(extra_vars, str):
            extra_vars = json.loads(extra_vars or "{}")
        if not isinstance(extra_vars, dict):
            return web.json_response(
                {"extra_vars": ["Must be a valid JSON or YAML dictionary."]}, status=400
            )
        limit = body.get("limit", "")
        if not isinstance(limit, str):
            return web.json_response({"limit": ["Not a valid string."]}, status=400)
        ignored: dict[str, Any] = {}
        if extra_vars and not template.ask_variables_on_launch:
            ignored["extra_vars"], extra_vars = extra_vars, {}
        if limit and not template.ask_limit_on_launch:
            ignored["limit"], limit = limit, ""
        state.launches.append(body)
        job = Job(
            next(next_job), template, extra_vars, limit, list(state.job_script), state.job_stdout
        )
        state.jobs[job.id] = job
        answer = job.as_json() | {"job": job.id, "ignored_fields": ignored}
        return web.json_response(answer, status=201)

    def job_of(request: web.Request) -> Job:
        job = state.jobs.get(int(request.match_info["id"]))
        if job is None:
            raise web.HTTPNotFound(
                text=json.dumps({"detail": "Not found."}), content_type="application/json"
            )
        return job

    async def job(request: web.Request) -> web.Response:
        job = job_of(request)
        job.polls += 1
        if job.status != "canceled" and job.script:
            job.status = job.script.pop(0) if len(job.script) > 1 else job.script[0]
        return web.json_response(job.as_json())

    async def stdout(request: web.Request) -> web.Response:
        job = job_of(request)
        if request.query.get("format") != "txt":
            return web.json_response({"detail": "use ?format=txt in this server"}, status=400)
        return web.Response(text=job.stdout, content_type="text/plain")

    async def cancel(request: web.Request) -> web.Response:
        job = job_of(request)
        can_cancel = job.status in ("pending", "waiting", "running")
        if request.method == "GET":
            return web.json_response({"can_cancel": can_cancel})
        job.cancel_requests += 1
        if not can_cancel:
            return _error(405, 'Method "POST" not allowed.')
        job.status = "canceled"
        return web.Response(status=202)

    app = web.Application(middlewares=[contract])
    app.router.add_get("/api/v2/job_templates/", lookup, name="lookup")
    app.router.add_post("/api/v2/job_templates/{id:\\d+}/launch/", launch, name="launch")
    app.router.add_get("/api/v2/jobs/{id:\\d+}/", job, name="job")
    app.router.add_get("/api/v2/jobs/{id:\\d+}/stdout/", stdout, name="stdout")
    app.router.add_route("*", "/api/v2/jobs/{id:\\d+}/cancel/", cancel, name="cancel")
    server = await aiohttp_server(app, host="127.0.0.1")
    state.base = f"http://127.0.0.1:{server.port}"
    return state


@pytest.fixture
async def make_executor(
    controller: Controller, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., AwxExecutor]]:
    """AwxExecutors for the test controller (token from the environment), closed after."""
    monkeypatch.setenv("AWX_TEST_TOKEN", TOKEN)
    made: list[AwxExecutor] = []

    def make(**settings: Any) -> AwxExecutor:
        given = {
            "url": controller.base,
            "poll_interval": "10ms",
            "max_poll_interval": "40ms",
            **settings,
        }
        if not {"token", "token_env", "token_file", "username"} & set(given):
            given["token_env"] = "AWX_TEST_TOKEN"
        executor = AwxExecutor(AwxSettings.model_validate(given))
        made.append(executor)
        return executor

    yield make
    for executor in made:
        await executor.close()
