"""JSON error bodies: `{"error": …, "details": [{"path": …, "message": …}]}` everywhere."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError


def json_body(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def error_response(
    status: int,
    message: str,
    details: Sequence[dict[str, str]] = (),
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = list(details)
    return json_body(body, status=status, headers=headers)


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    """pydantic errors as {path: "alerts.3.labels", message: …}, wire names kept."""
    return [
        {"path": ".".join(str(part) for part in err["loc"]), "message": err["msg"]}
        for err in exc.errors(include_url=False)
    ]


class ApiError(Exception):
    """Raised by handlers to answer with a JSON error; rendered by `error_middleware`."""

    def __init__(self, status: int, message: str, details: Sequence[dict[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error leaves as the same JSON shape, aiohttp's own 404/405 included."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, exc.details)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason, headers=_kept_headers(exc))


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
