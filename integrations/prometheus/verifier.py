"""The PromQL verifier: one instant query against the Prometheus HTTP API per check.

A check is healthy when the expression returns no series, as an alert rule stops firing
when its expression does. Errors are classified the way the API documents them: 400
(`bad_data`) and 422 (`execution`) come back the same however long we wait, so they end
verification; 5xx (503 when a query timed out), 429 and network errors are tried again at
the next interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from pydantic import BaseModel

from remediator.plugins import CheckFailed, CheckResult, tls_setting

from .model import PrometheusSettings

_SHOWN_SERIES = 3
_SHOWN_ERROR_CHARS = 500


class PromQLVerifier:
    """Queries `settings.url` + /api/v1/query; one HTTP session for the service's life."""

    def __init__(self, settings: PrometheusSettings) -> None:
        self._settings = settings
        self._endpoint = str(settings.url).rstrip("/") + "/api/v1/query"
        self._session: aiohttp.ClientSession | None = None
        # An unusable ca_file stops the service at start, not at the first check.
        self._ssl = tls_setting(settings.verify_tls, settings.ca_file, "verifiers.promql.ca_file")

    async def check(self, query: str) -> CheckResult:
        """Run `query` once; healthy when it returns no series."""
        status, body = await self._post(query)
        if status != 200 or body.get("status") != "success":
            raise _failure(status, body)
        return _result(query, body.get("data") or {})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _post(self, query: str) -> tuple[int, dict[str, Any]]:
        # POST with a form body: long queries do not hit URL length limits (the API takes both).
        try:
            async with self._http().post(
                self._endpoint, data={"query": query}, headers=self._headers()
            ) as response:
                return response.status, await _json(response)
        except ValueError as exc:  # token source missing
            raise CheckFailed(f"cannot authenticate to Prometheus: {exc}") from None
        except TimeoutError:
            limit = self._settings.timeout.total_seconds()
            raise CheckFailed(f"Prometheus did not answer within {limit:g}s") from None
        except aiohttp.ClientError as exc:
            raise CheckFailed(f"cannot reach Prometheus at {self._endpoint}: {exc}") from None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self._settings.timeout.total_seconds())
            connector = aiohttp.TCPConnector(ssl=self._ssl)
            self._session = aiohttp.ClientSession(timeout=timeout, connector=connector)
        return self._session

    def _headers(self) -> dict[str, str]:
        headers = dict(self._settings.headers)
        token = self._settings.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers


def create(settings: BaseModel) -> PromQLVerifier:
    assert isinstance(settings, PrometheusSettings)
    return PromQLVerifier(settings)


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body = await response.json(content_type=None)
    except ValueError:
        text = (await response.text())[:_SHOWN_ERROR_CHARS]
        return {"status": "error", "error": f"not a Prometheus API answer: {text!r}"}
    return body if isinstance(body, dict) else {"status": "error", "error": repr(body)}


def _failure(status: int, body: Mapping[str, Any]) -> CheckFailed:
    kind = body.get("errorType") or "error"
    message = str(body.get("error") or "no error message")[:_SHOWN_ERROR_CHARS]
    summary = f"Prometheus answered {status} ({kind}): {message}"
    # The query itself is wrong (400) or cannot be evaluated (422): waiting will not help.
    return CheckFailed(summary, permanent=status in (400, 422))


def _result(query: str, data: Mapping[str, Any]) -> CheckResult:
    kind = data.get("resultType")
    if kind not in ("vector", "matrix"):
        raise CheckFailed(
            f"the query returns a {kind}, not series; write an expression that returns series "
            "only while the fault lasts, like an alert rule's",
            permanent=True,
        )
    series = data.get("result") or []
    if not series:
        return CheckResult(healthy=True, summary="returned no series")
    shown = ", ".join(_describe(item) for item in series[:_SHOWN_SERIES])
    more = f" and {len(series) - _SHOWN_SERIES} more" if len(series) > _SHOWN_SERIES else ""
    return CheckResult(healthy=False, summary=f"still returns {len(series)} series: {shown}{more}")


def _describe(item: Mapping[str, Any]) -> str:
    metric = item.get("metric") or {}
    labels = ", ".join(f'{name}="{value}"' for name, value in sorted(metric.items()))
    value = item.get("value") or (item.get("values") or [[None, "?"]])[-1]
    return f"{{{labels}}} = {value[1]}"
