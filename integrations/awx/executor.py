"""The awx executor: launch a job template through the Controller API v2 and follow the job.

One attempt is: find the template (by name, cached), launch it with the rendered
`extra_vars` and `limit`, poll the job with exponential backoff until it ends, then fetch the
tail of its stdout. Until the launch, rate limits, 5xx answers and network errors fail
retryably (the core tries again); after it, they only delay the next look at the job, since
a retry would launch a second job. When the core cancels the attempt (its timeout), the job
is cancelled on the controller before the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
from multidict import CIMultiDictProxy
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from remediator_integrations.ansible.model import check_extravar_name
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    wait_exponential,
)

from remediator.plugins import (
    ActionFailed,
    ActionRequest,
    ActionResult,
    ExecutorContext,
    PluginError,
    retry_after_seconds,
    tls_setting,
)

from .model import AwxSettings

__all__ = [
    "FINISHED",
    "MAX_OUTPUT_BYTES",
    "AwxExecutor",
    "AwxFailed",
    "create",
    "limit_problem",
    "recap",
]

log = logging.getLogger(__name__)

MAX_OUTPUT_BYTES: Final = 64 * 1024
"""An attempt's output (header, note and stdout tail) is at most this long."""
FINISHED: Final = frozenset({"successful", "failed", "error", "canceled"})
_MAX_STDOUT_READ: Final = 16 * 1024 * 1024  # stdout read to find its tail, at most
_MAX_JSON_BYTES: Final = 1024 * 1024
_CANCEL_TIMEOUT_S: Final = 10.0
_MAX_RETRY_AFTER_S: Final = 300.0
_USER_AGENT: Final = "remediator"
_BAD_HEADER_CHARS: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TEMPLATE_START: Final = re.compile(r"\{[{%#]")
# Host or group names, comma-separated. No wildcards, ranges, regexes (~), exclusions (!),
# intersections (&), files (@) or ':' separators: in a job template's inventory those could
# widen a limit built from label values to hosts the alert is not about.
_LIMIT: Final = re.compile(r"[A-Za-z0-9_.-]{1,255}(?:,[A-Za-z0-9_.-]{1,255}){0,99}")
_RECAP_LINE: Final = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)"
    r"(?:\s+skipped=(?P<skipped>\d+))?(?:\s+rescued=(?P<rescued>\d+))?"
    r"(?:\s+ignored=(?P<ignored>\d+))?"
)
_STATUS_WORDS: Final = {
    "successful": "successful",
    "failed": "failed",
    "error": "ended in error",
    "canceled": "was canceled",
}


class AwxFailed(ActionFailed):
    """An ActionFailed that also says when the controller wants to be asked again."""

    def __init__(
        self,
        summary: str,
        *,
        retryable: bool = False,
        output: str = "",
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(summary, retryable=retryable, output=output)
        self.retry_after = retry_after
        self.status = status  # the controller's HTTP status, when the failure is its answer


class _Transient(Exception):
    """A look at the controller that may succeed later: 429, 5xx, a network error."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class _Launch(BaseModel):
    """The rendered parameters `run` needs; other fields (timeout, retries) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    job_template: str | None = None
    job_template_id: int | None = Field(None, ge=1)
    extra_vars: dict[str, str] = Field(default_factory=dict)
    limit: str | None = None


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    reason: str
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def detail(self) -> str:
        """The controller's own words for an error, shortened: `detail`, or field errors."""
        data = self.json()
        if isinstance(data, dict):
            if isinstance(data.get("detail"), str):
                return _shorten(data["detail"], 300)
            parts = [f"{key}: {_flatten(value)}" for key, value in data.items()]
            return _shorten("; ".join(parts), 300)
        return _shorten(self.body.decode(errors="replace").strip(), 300)


def _flatten(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_flatten(item) for item in value)
    return str(value)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _template_label(launch: _Launch) -> str:
    if launch.job_template is not None:
        return f"template {launch.job_template!r}"
    return f"template {launch.job_template_id}"


def recap(stdout: str) -> dict[str, dict[str, int]]:
    """Per-host counts from the last PLAY RECAP of an ansible-playbook stdout."""
    start = stdout.rfind("PLAY RECAP")
    if start < 0:
        return {}
    hosts: dict[str, dict[str, int]] = {}
    for line in stdout[start:].splitlines()[1:]:
        found = _RECAP_LINE.match(line.strip())
        if found:
            hosts[found["host"]] = {
                key: int(value)
                for key, value in found.groupdict().items()
                if key != "host" and value is not None
            }
    return hosts


def _recap_text(hosts: Mapping[str, Mapping[str, int]]) -> str:
    """The recap in a few words: each host's counts for up to 3 hosts, else totals."""
    if not hosts:
        return ""
    if len(hosts) <= 3:
        parts = []
        for host, counts in hosts.items():
            shown = [f"ok={counts.get('ok', 0)}", f"changed={counts.get('changed', 0)}"]
            shown += [f"{key}={counts[key]}" for key in ("failed", "unreachable") if counts[key]]
            parts.append(f"{host} {' '.join(shown)}")
        return "; " + ", ".join(parts)
    totals = {
        key: sum(1 for counts in hosts.values() if counts.get(key))
        for key in ("changed", "failed", "unreachable")
    }
    return f"; {len(hosts)} hosts: " + ", ".join(f"{n} {key}" for key, n in totals.items())


class AwxExecutor:
    """Runs `type: awx` actions; one aiohttp session and one template-id cache for all."""

    def __init__(self, settings: AwxSettings) -> None:
        self._settings = settings
        self._ssl = tls_setting(settings.verify_tls, settings.ca_file, "executors.awx.ca_file")
        self._session: aiohttp.ClientSession | None = None
        self._template_ids: dict[str, int] = {}
        # Tests replace it to see the backoff.
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    # -- the Executor protocol -------------------------------------------------------------

    async def run(self, request: ActionRequest) -> ActionResult:
        """Launch the job template and follow the job (with `dry_run`, only describe it)."""
        launch = _checked_launch(request.params)
        label = _template_label(launch)
        if request.dry_run:
            return ActionResult(summary=f"dry run: would launch AWX job {label}{_shown(launch)}")
        if self._settings.url is None:
            raise AwxFailed(_NOT_CONFIGURED)
        template_id = await self._template_id(launch)
        job_id, job_name = await self._launch_shielded(template_id, launch, label)
        if job_name:
            label = f"template {job_name!r}"
        try:
            job = await self._follow(job_id, label)
            output = await self._output(job_id)
        except asyncio.CancelledError:
            await self._cancel_on_the_way_out(job_id, label)
            raise
        return _judge(job_id, template_id, label, job, output)

    def check(self, params: Mapping[str, Any]) -> list[str]:
        """Static problems: no controller configured, a limit that is not a host pattern."""
        problems = []
        if self._settings.url is None:
            problems.append(f"awx: {_NOT_CONFIGURED}")
        limit = params.get("limit")
        source = getattr(limit, "source", limit)
        if isinstance(source, str) and not _TEMPLATE_START.search(source):
            problem = limit_problem(source)
            if problem is not None:
                problems.append(f"awx: {problem}")
        return problems

    async def close(self) -> None:
        """Close the shared session, if one was opened."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- the steps ---------------------------------------------------------------------------

    async def _template_id(self, launch: _Launch) -> int:
        if launch.job_template_id is not None:
            return launch.job_template_id
        name = launch.job_template
        assert name is not None
        cached = self._template_ids.get(name)
        if cached is not None:
            return cached
        what = f"looking up AWX job template {name!r}"
        answer = await self._call_once("GET", "job_templates/", what, params={"name": name})
        data = answer.json()
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise AwxFailed(f"{what}: the controller's answer is not a job template list")
        ids = [
            item["id"] for item in results if isinstance(item, dict) and item.get("name") == name
        ]
        if not ids:
            raise AwxFailed(
                f"AWX job template {name!r} not found: check job_template (exact name, case "
                "matters) and that the controller user of executors.awx can see it"
            )
        if len(ids) > 1:
            raise AwxFailed(
                f"{len(ids)} AWX job templates are named {name!r} (ids "
                f"{', '.join(map(str, ids))}, in different organizations): use job_template_id"
            )
        self._template_ids[name] = int(ids[0])
        return int(ids[0])

    async def _launch_shielded(
        self, template_id: int, launch: _Launch, label: str
    ) -> tuple[int, str]:
        """Launch; if cancelled while the launch is on the wire, wait for its answer (briefly)
        and cancel the job it started, so that a timeout never leaves a job running."""
        task = asyncio.ensure_future(self._launch(template_id, launch, label))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                async with asyncio.timeout(_CANCEL_TIMEOUT_S):
                    job_id, _ = await asyncio.shield(task)
                    await self._cancel_on_the_way_out(job_id, label)
            if not task.done():
                task.cancel()
            raise

    async def _launch(self, template_id: int, launch: _Launch, label: str) -> tuple[int, str]:
        body: dict[str, Any] = {}
        if launch.extra_vars:
            body["extra_vars"] = dict(launch.extra_vars)
        if launch.limit is not None:
            body["limit"] = launch.limit
        what = f"launching AWX job {label}"
        try:
            answer = await self._call_once(
                "POST", f"job_templates/{template_id}/launch/", what, json_body=body
            )
        except AwxFailed as error:
            if error.status == 404 and launch.job_template in self._template_ids:
                # Deleted and recreated under the same name: the next attempt looks it up.
                del self._template_ids[launch.job_template]
                error.retryable = True
            raise
        data = answer.json()
        job_id = data.get("job", data.get("id")) if isinstance(data, dict) else None
        if not isinstance(job_id, int):
            raise AwxFailed(f"{what}: the controller's answer names no job")
        name = data.get("name") if isinstance(data.get("name"), str) else ""
        ignored = data.get("ignored_fields")
        if isinstance(ignored, dict) and ignored:
            fields = ", ".join(sorted(ignored))
            outcome = await self._cancel(job_id)
            raise AwxFailed(
                f'AWX job {label} ignored {fields}: turn on "Prompt on launch" for '
                f"{fields} in the job template (job {job_id} would run without the alert's "
                f"data; {outcome})"
            )
        log.info("launched AWX job %s (%s)", job_id, label)
        return job_id, name

    async def _follow(self, job_id: int, label: str) -> dict[str, Any]:
        """The job once it has finished; looks with exponential backoff, honouring 429s."""
        settings = self._settings
        backoff = wait_exponential(
            multiplier=settings.poll_interval.total_seconds(),
            max=settings.max_poll_interval.total_seconds(),
        )

        def wait(state: RetryCallState) -> float:
            delay = float(backoff(state))
            error = state.outcome.exception() if state.outcome is not None else None
            if isinstance(error, _Transient):
                log.info("AWX job %s: %s; looking again", job_id, error.message)
                if error.retry_after is not None:
                    delay = max(delay, min(error.retry_after, _MAX_RETRY_AFTER_S))
            return delay

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Transient)
            | retry_if_result(lambda job: job.get("status") not in FINISHED),
            wait=wait,
            sleep=self._sleep,
            reraise=True,
        )
        what = f"following AWX job {job_id} ({label}), which was launched and may still run"
        job: dict[str, Any] = await retrying(self._look, job_id, what)
        return job

    async def _look(self, job_id: int, what: str) -> dict[str, Any]:
        answer = await self._call("GET", f"jobs/{job_id}/", what)
        data = answer.json()
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            raise AwxFailed(f"{what}: the controller's answer has no job status")
        return data

    async def _output(self, job_id: int) -> str:
        """The job's stdout as text, its tail if long; a note if it cannot be had."""
        try:
            session = self._client()
            url = self._url(f"jobs/{job_id}/stdout/")
            async with session.get(
                url,
                params={"format": "txt"},
                headers=self._headers(),
                allow_redirects=False,
            ) as response:
                if response.status != 200:
                    body = await response.content.read(_MAX_JSON_BYTES)
                    answer = _Answer(response.status, response.reason or "", response.headers, body)
                    return f"(stdout unavailable: {response.status} {answer.detail()})"
                return await _read_tail(response)
        except (TimeoutError, aiohttp.ClientError) as error:
            return f"(stdout unavailable: {str(error) or type(error).__name__})"
        except AwxFailed as error:  # the credentials went missing meanwhile
            return f"(stdout unavailable: {error.summary})"

    async def _cancel_on_the_way_out(self, job_id: int, label: str) -> None:
        """Cancel the job while our own task is being cancelled (the action's timeout)."""
        task = asyncio.ensure_future(self._cancel(job_id))
        try:
            outcome = await asyncio.shield(task)
        except asyncio.CancelledError:  # cancelled once more: let the request finish alone
            log.warning("AWX job %s (%s): timed out; cancel request left running", job_id, label)
            return
        log.warning("AWX job %s (%s): the action timed out; %s", job_id, label, outcome)

    async def _cancel(self, job_id: int) -> str:
        """Ask the controller to cancel the job; what came of it, in a few words."""
        try:
            async with asyncio.timeout(_CANCEL_TIMEOUT_S):
                answer = await self._request("POST", f"jobs/{job_id}/cancel/")
        except TimeoutError:
            return f"cancelling job {job_id} timed out after {_CANCEL_TIMEOUT_S:g}s"
        except _Transient as error:
            return f"cancelling job {job_id} failed: {error.message}"
        if answer.status in (200, 202, 204):
            return f"job {job_id} was cancelled"
        if answer.status == 405:
            return f"job {job_id} had already finished"
        return f"cancelling job {job_id} failed: {answer.status} {answer.detail()}"

    # -- HTTP ---------------------------------------------------------------------------------

    async def _call_once(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> _Answer:
        """A request whose transient failures the core retries: AwxFailed(retryable=True)."""
        try:
            return await self._call(method, path, what, params=params, json_body=json_body)
        except _Transient as error:
            raise AwxFailed(
                f"{what}: {error.message}", retryable=True, retry_after=error.retry_after
            ) from None

    async def _call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> _Answer:
        """A 2xx answer; _Transient for 429, 5xx and network errors; AwxFailed otherwise."""
        answer = await self._request(method, path, params=params, json_body=json_body)
        if 200 <= answer.status < 300:
            return answer
        raise _problem(answer, what)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> _Answer:
        headers = self._headers()
        data = None
        if json_body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(json_body, ensure_ascii=False).encode()
        try:
            # Redirects are not followed: the credentials must go to the configured URL only.
            async with self._client().request(
                method,
                self._url(path),
                params=params,
                data=data,
                headers=headers,
                allow_redirects=False,
            ) as response:
                body = await response.content.read(_MAX_JSON_BYTES)
                answer = _Answer(response.status, response.reason or "", response.headers, body)
        except TimeoutError:
            seconds = self._settings.request_timeout.total_seconds()
            raise _Transient(f"no answer within {seconds:g}s") from None
        except aiohttp.ClientConnectorCertificateError as error:
            raise AwxFailed(
                f"the controller's TLS certificate is not trusted ({error}): set "
                "executors.awx.ca_file"
            ) from None
        except aiohttp.ClientError as error:
            raise _Transient(str(error) or type(error).__name__) from None
        if answer.status == 429 or answer.status >= 500:
            retry_after = retry_after_seconds(answer.headers.get("Retry-After"))
            note = "" if retry_after is None else f" (Retry-After {retry_after:g}s)"
            raise _Transient(f"{answer.status} {answer.reason}{note}".strip(), retry_after)
        return answer

    def _url(self, path: str) -> str:
        assert self._settings.url is not None
        return self._settings.url + self._settings.api_path + path

    def _headers(self) -> dict[str, str]:
        return {
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
            "Authorization": self._authorization(),
        }

    def _authorization(self) -> str:
        """The Authorization header, secrets read now; AwxFailed when one is missing."""
        settings = self._settings
        try:
            token = settings.token_value()
            if token is not None:
                value = f"Bearer {token}"
            else:
                pair = f"{settings.username}:{settings.password_value()}".encode()  # RFC 7617
                value = "Basic " + base64.b64encode(pair).decode("ascii")
        except PluginError as error:
            raise AwxFailed(f"executors.awx credentials: {error}") from None
        if _BAD_HEADER_CHARS.search(value) or value in ("Bearer ", "Basic "):
            raise AwxFailed("executors.awx credentials: the secret is empty or has a line break")
        return value

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use so that it belongs to the loop `run` is called in.
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self._settings.request_timeout.total_seconds())
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl), timeout=timeout
            )
        return self._session


_NOT_CONFIGURED: Final = (
    "executors.awx.url is not set: configure the controller (url and a token) in the service config"
)


def _checked_launch(params: Mapping[str, Any]) -> _Launch:
    """The rendered parameters, checked again (they may come from storage): never trusted."""
    try:
        launch = _Launch.model_validate(params)
    except ValidationError as error:
        raise AwxFailed(f"invalid awx action parameters: {error}") from None
    if (launch.job_template is None) == (launch.job_template_id is None):
        raise AwxFailed("invalid awx action parameters: give job_template or job_template_id")
    for name in launch.extra_vars:
        try:
            check_extravar_name(name)
        except ValueError as error:
            raise AwxFailed(str(error)) from None
    if launch.limit is not None:
        problem = limit_problem(launch.limit)
        if problem is not None:
            raise AwxFailed(problem)
    return launch


def limit_problem(limit: str) -> str | None:
    """Why a rendered `limit` must not be sent, or None: it must name hosts or groups."""
    if not limit.strip():
        return (
            "limit rendered empty: refusing to run the job template against its whole "
            "inventory (does the alert have the label the limit uses?)"
        )
    if not _LIMIT.fullmatch(limit):
        return (
            f"limit {limit[:100]!r} is not a plain list of host or group names (letters, "
            "digits, _ . - separated by commas); patterns could widen the run"
        )
    return None


def _shown(launch: _Launch) -> str:
    parts = []
    if launch.extra_vars:
        parts.append(f"extra_vars {json.dumps(launch.extra_vars, ensure_ascii=False)}")
    if launch.limit is not None:
        parts.append(f"limit {launch.limit!r}")
    return (" with " + " and ".join(parts)) if parts else ""


def _problem(answer: _Answer, what: str) -> AwxFailed:
    """A 4xx (or 3xx) answer as a failure that names what to fix; never retried."""
    status = f"{answer.status} {answer.reason}".strip()
    hint = {
        401: "check the token (or username/password) in executors.awx: missing, expired or revoked",
        403: "the controller user of executors.awx lacks permission: it needs Execute on the "
        "job template (and Use on its inventory and credentials) and Read on its jobs",
        404: "check job_template / job_template_id, and that the controller user of "
        "executors.awx can see it",
        405: "the controller refuses to launch it",
    }.get(answer.status, "")
    if 300 <= answer.status < 400:
        location = answer.headers.get("Location", "")
        hint = f"redirected to {location}; set executors.awx.url to the controller's real address"
    detail = answer.detail()
    text = f"{what}: {status}"
    if detail:
        text += f" ({detail})"
    if hint:
        text += f": {hint}"
    return AwxFailed(text, status=answer.status)


async def _read_tail(response: aiohttp.ClientResponse) -> str:
    """The last bytes of a (possibly long) body that fit the output, as text."""
    budget = MAX_OUTPUT_BYTES - 256  # room for the header and the note
    tail = bytearray()
    total = 0
    while total < _MAX_STDOUT_READ:
        chunk = await response.content.read(min(65536, _MAX_STDOUT_READ - total))
        if not chunk:
            break
        total += len(chunk)
        tail += chunk
        if len(tail) > budget:
            del tail[: len(tail) - budget]
    text = bytes(tail).decode(response.charset or "utf-8", errors="replace")
    if total > len(tail):
        text = text.partition("\n")[2]  # start at a whole line
        text = f"… (first {(total - len(text.encode())) // 1024} KiB cut)\n" + text
    return text


def _judge(
    job_id: int, template_id: int, label: str, job: Mapping[str, Any], output: str
) -> ActionResult:
    status = str(job.get("status"))
    elapsed = job.get("elapsed")
    took = f" in {elapsed:.1f}s" if isinstance(elapsed, int | float) else ""
    hosts = recap(output)
    summary = f"AWX job {job_id} ({label}) {_STATUS_WORDS.get(status, status)}{took}"
    summary += _recap_text(hosts)
    explanation = job.get("job_explanation")
    if status != "successful" and isinstance(explanation, str) and explanation:
        summary += f" ({_shorten(explanation, 200)})"
    output = f"AWX job {job_id}, {label}: {status}\n{output}"
    if status == "successful":
        data = {
            "job_id": job_id,
            "job_template_id": template_id,
            "status": status,
            "elapsed": elapsed,
            "recap": hosts,
        }
        return ActionResult(summary=summary, output=output, data=data)
    raise AwxFailed(summary, retryable=False, output=output)


def create(context: ExecutorContext) -> AwxExecutor:
    """The executor for the service, from its validated `executors.awx` settings."""
    settings = context.settings
    if settings is None:
        settings = AwxSettings()
    if not isinstance(settings, AwxSettings):
        raise PluginError(f"executors.awx: expected AwxSettings, got {type(settings).__name__}")
    executor = AwxExecutor(settings)
    if settings.url is not None:
        try:
            executor._authorization()  # a missing secret should stop the service at start
        except AwxFailed as error:
            raise PluginError(error.summary) from None
    return executor
