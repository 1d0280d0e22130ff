"""How API answers and transport errors become `ActionFailed`, with the API's own message."""

from __future__ import annotations

import contextlib
import json
from typing import Any, Final

from kubernetes.client.exceptions import ApiException

from remediator.plugins import ActionFailed

__all__ = ["ApiFailure", "api_failure", "connection_failure", "status_message"]


class ApiFailure(ActionFailed):
    """An ActionFailed from an API error answer, with its HTTP status and Status reason."""

    def __init__(
        self, summary: str, *, status: int, reason: str, retryable: bool, output: str
    ) -> None:
        super().__init__(summary, retryable=retryable, output=output)
        self.status = status
        self.reason = reason


_WHAT: Final = {
    400: "bad request",
    401: "unauthorized (check the credentials)",
    403: "forbidden (check the RBAC of rbac.yaml)",
    409: "conflict",
    422: "invalid",
    429: "too many requests",
}


def api_failure(error: ApiException, target: str) -> ApiFailure:
    """Map an API error status to ActionFailed: 409, 429 and 5xx are retryable, the rest not.

    `target` names the object, e.g. "deployment shop/checkout".
    """
    status = int(error.status or 0)
    message, reason = _status(error)
    if status == 404:
        summary = f"{target} not found"
    else:
        what = _WHAT.get(status, f"HTTP {status}")
        summary = f"{target}: {what}: {message}" if message else f"{target}: {what}"
    retryable = status in (409, 429) or status >= 500
    return ApiFailure(
        summary, status=status, reason=reason, retryable=retryable, output=error.body or ""
    )


def connection_failure(error: Exception, target: str) -> ActionFailed:
    """A request that got no answer (refused, reset, timed out): retryable."""
    return ActionFailed(f"{target}: Kubernetes API unreachable: {error}", retryable=True)


def status_message(error: ApiException) -> str:
    """The `message` of the API's Status body, or the HTTP reason if there is no Status."""
    return _status(error)[0]


def _status(error: ApiException) -> tuple[str, str]:
    """(message, reason) from the Status body the API server sends with every error."""
    body: Any = None
    # A body that is not JSON did not come from an API server (a proxy's error page).
    with contextlib.suppress(ValueError):
        body = json.loads(error.body) if error.body else None
    if not isinstance(body, dict):
        body = {}
    message = body.get("message")
    reason = body.get("reason")
    return (
        message if isinstance(message, str) else str(error.reason or ""),
        reason if isinstance(reason, str) else "",
    )
