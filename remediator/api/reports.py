"""`GET /api/v1/reports/quality?from=…&to=…`: the service-quality report as JSON or CSV."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from remediator import appkeys
from remediator.api.auth import requires
from remediator.api.errors import error_response, json_body
from remediator.config import Role
from remediator.reports.export import to_csv
from remediator.reports.period import parse_period
from remediator.reports.quality import QualityReport, build_report


@requires(Role.viewer)
async def quality(request: web.Request) -> web.Response:
    try:
        as_csv = _wants_csv(request)
        report = await quality_report(request)
    except ValueError as exc:
        return error_response(400, f"invalid query: {exc}")
    if as_csv:
        name = f"remediator-quality-{report.start:%Y%m%dT%H%M}-{report.end:%Y%m%dT%H%M}.csv"
        return web.Response(
            text=to_csv(report),
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return json_body(report.model_dump(mode="json"))


async def quality_report(request: web.Request) -> QualityReport:
    """The report for the request's `from` / `to`; ValueError names a bad parameter."""
    query = request.query
    start, end = parse_period(query.get("from"), query.get("to"), datetime.now(UTC))
    return await build_report(request.app[appkeys.DATABASE], start, end)


def _wants_csv(request: web.Request) -> bool:
    chosen = request.query.get("format")
    if chosen is not None:
        if chosen not in ("csv", "json"):
            raise ValueError(f"format={chosen!r}: use csv or json")
        return chosen == "csv"
    accept = request.headers.get("Accept", "")
    return "text/csv" in accept and "application/json" not in accept
