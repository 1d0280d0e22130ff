"""Page rendering: one Jinja2 environment with autoescaping on, and the filters pages use.

Alert labels, annotations and action output are untrusted: they reach templates only as
values, which autoescaping turns into text; no template is ever built from them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from remediator import __version__
from remediator.web.session import WebUser

_ENV = Environment(
    loader=PackageLoader("remediator.web", "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(
    request: web.Request,
    template: str,
    *,
    user: WebUser | None,
    status: int = 200,
    **context: Any,
) -> web.Response:
    """`template` with `context` plus what every page shows (who is signed in, the clock)."""
    html = _ENV.get_template(template).render(
        user=user, now=datetime.now(UTC), version=__version__, path=request.path, **context
    )
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        headers={
            # Pages only load our own files; nothing inline runs.
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
            "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        },
    )


def render_error(
    request: web.Request, status: int, message: str, *, user: WebUser | None
) -> web.Response:
    return render(request, "error.html", user=user, status=status, message=message)


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    """`4m 12s`, `3h 05m`, `2d 4h`: two units, enough to compare at a glance."""
    if seconds is None:
        return "—"
    value = round(abs(seconds))
    days, rest = divmod(value, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return ""
    seconds = (datetime.now(UTC) - moment).total_seconds()
    return f"in {duration(-seconds)}" if seconds < 0 else f"{duration(seconds)} ago"


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f} %"


def _pretty_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


_ENV.filters.update(
    when=_when, ago=_ago, duration=duration, percent=_percent, pretty_json=_pretty_json
)
