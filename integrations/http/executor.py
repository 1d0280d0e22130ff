"""The http executor: one request per attempt through a shared aiohttp session.

Rendered parameters carry label values, which are untrusted: the rendered URL and header
values are checked before anything is sent (`checked_url`, `checked_headers`), and the
body's strings are sent as JSON strings, never parsed.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any, Final, Literal
from urllib.parse import unquote, urlsplit

import aiohttp
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError
from yarl import URL

from remediator.plugins import (
    ActionFailed,
    ActionRequest,
    ActionResult,
    ExecutorContext,
    PluginError,
    tls_setting,
)

from .model import DEFAULT_EXPECT_STATUS, HttpSettings, header_name_problem

__all__ = ["MAX_OUTPUT_BYTES", "HttpExecutor", "checked_headers", "checked_url", "create"]

MAX_OUTPUT_BYTES: Final = 64 * 1024
_SHOWN_BODY_CHARS: Final = 2000
_USER_AGENT: Final = "remediator"
# Any whitespace (Unicode's too) or control character: a rendered URL with one is a label
# value that was not percent-encoded, and may split or redirect the request line.
_BAD_URL_CHARS: Final = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
# Field values may hold tabs and visible text only; CR/LF would inject headers.
_BAD_HEADER_CHARS: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TEMPLATE_START: Final = re.compile(r"\{[{%#]")


class _Call(BaseModel):
    """The rendered parameters `run` needs; other fields (timeout, retries) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    # The model's field is `body` (alias `json`); compiled params use the field name.
    body: Any = Field(None, validation_alias=AliasChoices("body", "json"))
    expect_status: list[int] = Field(default_factory=lambda: list(DEFAULT_EXPECT_STATUS))


def _refuse(message: str) -> ActionFailed:
    # Refusals are about the rule or the alert's values; trying again cannot change them.
    return ActionFailed(message, retryable=False)


def checked_url(rendered: str, allowed_hosts: list[str] | None) -> URL:
    """The rendered URL, parsed; ActionFailed (not retryable) if it must not be called."""
    if _BAD_URL_CHARS.search(rendered):
        raise _refuse(
            f"refusing url {rendered!r}: it contains whitespace or control characters "
            "(percent-encode label values, e.g. {{ labels.x | urlencode }})"
        )
    try:
        path = urlsplit(rendered).path
        url = URL(rendered)
        url.port  # noqa: B018 - parses the port, which raises ValueError if out of range
    except ValueError as error:
        raise _refuse(f"refusing url {rendered!r}: {error}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise _refuse(f"refusing url {rendered!r}: only http:// and https:// URLs with a host")
    if url.user is not None or url.password is not None:
        raise _refuse(f"refusing url {rendered!r}: credentials belong in executors.http settings")
    # yarl resolves dot segments, so a label value `..` (even as %2E%2E) would climb the
    # path to another endpoint of the same host.
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        raise _refuse(f"refusing url {rendered!r}: its path has . or .. segments")
    if allowed_hosts is not None and url.host.rstrip(".") not in allowed_hosts:
        raise _refuse(
            f"refusing url {rendered!r}: host {url.host} is not in executors.http.allowed_hosts"
        )
    return url


def checked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Rendered headers as they may be sent; ActionFailed (not retryable) for CR/LF."""
    for name, value in headers.items():
        problem = header_name_problem(name)
        if problem is not None:
            raise _refuse(f"refusing header: {problem}")
        if _BAD_HEADER_CHARS.search(value):
            raise _refuse(
                f"refusing header {name!r}: its value contains a line break or control character"
            )
    return dict(headers)


def _plain(value: Any) -> Any:
    """Read-only mappings and tuples as dicts and lists, which `json.dumps` accepts."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _encode_body(body: Any) -> str | None:
    if body is None:
        return None
    try:
        return json.dumps(_plain(body), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise _refuse(f"the json body cannot be encoded: {error}") from None


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


async def _read_output(response: aiohttp.ClientResponse) -> str:
    """The first MAX_OUTPUT_BYTES of the response body as text."""
    chunks: list[bytes] = []
    size = 0
    while size < MAX_OUTPUT_BYTES:
        chunk = await response.content.read(MAX_OUTPUT_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    try:
        text = data.decode(response.charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        text = data.decode("utf-8", errors="replace")
    if size >= MAX_OUTPUT_BYTES and await response.content.read(1):
        text += f"\n… (truncated at {MAX_OUTPUT_BYTES // 1024} KiB)"
    return text


class HttpExecutor:
    """Runs `type: http` actions; one aiohttp session for all of them."""

    def __init__(self, settings: HttpSettings) -> None:
        self._settings = settings
        self._ssl = tls_setting(settings.verify_tls, settings.ca_file, "executors.http.ca_file")
        self._session: aiohttp.ClientSession | None = None

    async def run(self, request: ActionRequest) -> ActionResult:
        """Send the request (with `dry_run`, only describe it); raise ActionFailed."""
        try:
            call = _Call.model_validate(request.params)
        except ValidationError as error:
            raise _refuse(f"invalid http action parameters: {error}") from None
        url = checked_url(call.url, self._settings.allowed_hosts)
        headers = checked_headers(call.headers)
        body = _encode_body(call.body)
        if request.dry_run:
            shown = "no body" if body is None else f"body {_shorten(body, _SHOWN_BODY_CHARS)}"
            return ActionResult(summary=f"dry run: would {call.method} {call.url} with {shown}")
        return await self._send(call, url, self._request_headers(headers, body), body)

    def check(self, params: Mapping[str, Any]) -> list[str]:
        """Static problems of a rule's http action: a missing or non-http url, a host
        outside allowed_hosts, a host taken from alert data while allowed_hosts is unset."""
        url = params.get("url")
        source = getattr(url, "source", url)  # a compiled Template, or the text as written
        if not isinstance(source, str) or not source.strip():
            return ["http: `url` is missing"]
        allowed = self._settings.allowed_hosts
        static = _TEMPLATE_START.split(source, maxsplit=1)[0]
        if static == source:
            return _url_problems(source, allowed)
        scheme, sep, rest = static.partition("://")
        host_is_static = bool(sep) and re.search(r"[/?#]", rest) is not None
        if host_is_static:
            host = re.split(r"[/?#]", rest, maxsplit=1)[0]
            return _url_problems(f"{scheme}://{host}/", allowed)
        if sep and scheme.lower() not in ("http", "https"):
            return [f"http: url {source!r} must start with http:// or https://"]
        if allowed is None:
            return [
                f"http: the host of url {source!r} comes from alert data and "
                "executors.http.allowed_hosts is not set, so any host could be called"
            ]
        return []

    async def close(self) -> None:
        """Close the shared session, if one was opened."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _request_headers(self, headers: dict[str, str], body: str | None) -> dict[str, str]:
        lower = {name.lower() for name in headers}
        merged = dict(headers)
        if "user-agent" not in lower:
            merged["User-Agent"] = _USER_AGENT
        if body is not None and "content-type" not in lower:
            merged["Content-Type"] = "application/json"
        authorization = self._authorization()
        if authorization is not None:
            merged["Authorization"] = authorization
        return merged

    def _authorization(self) -> str | None:
        settings = self._settings
        try:
            if settings.bearer_token is not None:
                value = "Bearer " + settings.bearer_token.reveal()
            elif settings.basic_auth is not None:
                auth = settings.basic_auth
                pair = f"{auth.username}:{auth.password.reveal()}".encode()  # RFC 7617, UTF-8
                value = "Basic " + base64.b64encode(pair).decode("ascii")
            else:
                return None
        except ValueError as error:
            raise _refuse(f"executors.http credentials: {error}") from None
        if _BAD_HEADER_CHARS.search(value):
            raise _refuse("executors.http credentials: the secret contains a line break")
        return value

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use so that it belongs to the loop `run` is called in.
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self._settings.timeout.total_seconds())
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl), timeout=timeout
            )
        return self._session

    async def _send(
        self, call: _Call, url: URL, headers: dict[str, str], body: str | None
    ) -> ActionResult:
        label = f"{call.method} {call.url}"
        data = None if body is None else body.encode()
        try:
            # Redirects are not followed: a Location header could lead outside allowed_hosts.
            async with self._client().request(
                call.method, url, headers=headers, data=data, allow_redirects=False
            ) as response:
                output = await _read_output(response)
                status, reason = response.status, response.reason or ""
        except TimeoutError:
            seconds = self._settings.timeout.total_seconds()
            raise ActionFailed(f"{label} → timed out after {seconds:g}s", retryable=True) from None
        except aiohttp.ClientConnectorCertificateError as error:
            raise _refuse(f"{label} → TLS certificate not trusted: {error}") from None
        except aiohttp.ClientError as error:
            message = str(error) or type(error).__name__
            raise ActionFailed(f"{label} → {message}", retryable=True) from None
        if status in call.expect_status:
            return ActionResult(
                summary=f"{label} → {status}", output=output, data={"status": status}
            )
        summary = f"{label} → {status} {reason}".rstrip()
        retryable = status >= 500 or status == 429
        raise ActionFailed(summary, retryable=retryable, output=output)


def _url_problems(url: str, allowed_hosts: list[str] | None) -> list[str]:
    try:
        checked_url(url, allowed_hosts)
    except ActionFailed as error:
        return [f"http: {error.summary}"]
    return []


def create(context: ExecutorContext) -> HttpExecutor:
    """The executor for the service, from its validated `executors.http` settings."""
    settings = context.settings
    if settings is None:
        settings = HttpSettings()
    if not isinstance(settings, HttpSettings):
        raise PluginError(f"executors.http: expected HttpSettings, got {type(settings).__name__}")
    executor = HttpExecutor(settings)
    try:
        executor._authorization()  # a missing secret should stop the service at start
    except ActionFailed as error:
        raise PluginError(error.summary) from None
    return executor
