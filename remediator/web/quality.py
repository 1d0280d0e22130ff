"""The Quality page: the service-quality report over a chosen period, as numbers and charts,
with the same report downloadable as CSV or JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web
from markupsafe import Markup

from remediator import appkeys
from remediator.config import Role
from remediator.reports.export import to_csv
from remediator.reports.period import parse_period
from remediator.reports.quality import QualityReport, build_report
from remediator.web.access import USER, page
from remediator.web.charts import Bar, bar_chart
from remediator.web.render import render


@page(Role.viewer)
async def quality_page(request: web.Request) -> web.Response:
    try:
        report = await _report(request)
    except ValueError as exc:
        return render(
            request, "quality.html", user=request[USER], status=400, error=str(exc), report=None,
            charts={}, form=_form(request, None), export="",
        )  # fmt: skip
    query = f"from={report.start.isoformat()}&to={report.end.isoformat()}".replace("+", "%2B")
    return render(
        request,
        "quality.html",
        user=request[USER],
        report=report,
        charts=_charts(report),
        form=_form(request, report),
        export=query,
        error=None,
    )


@page(Role.viewer)
async def quality_export(request: web.Request) -> web.Response:
    """The report of the page's period as CSV (`?format=csv`) or JSON, for a signed-in user."""
    try:
        report = await _report(request)
    except ValueError as exc:
        return web.json_response({"error": f"invalid query: {exc}"}, status=400)
    if request.query.get("format") == "csv":
        return web.Response(
            text=to_csv(report),
            content_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="remediator-quality.csv"'},
        )
    return web.json_response(text=report.model_dump_json())


async def _report(request: web.Request) -> QualityReport:
    start, end = parse_period(
        request.query.get("from") or None, request.query.get("to") or None, datetime.now(UTC)
    )
    return await build_report(request.app[appkeys.DATABASE], start, end)


def _form(request: web.Request, report: QualityReport | None) -> dict[str, str]:
    if report is None:
        return {"from": request.query.get("from", ""), "to": request.query.get("to", "")}
    last_day = report.end - timedelta(microseconds=1)  # `to` as a date includes that day
    return {"from": f"{report.start:%Y-%m-%d}", "to": f"{last_day:%Y-%m-%d}"}


def _charts(report: QualityReport) -> dict[str, Markup]:
    label = "%H:%M" if report.bucket_seconds < 86400 else "%m-%d"
    outcome = [
        Bar(
            f"{b.start:{label}}",
            [
                ("fill-auto", b.auto_remediated),
                ("fill-escalated", b.escalated),
                ("fill-other", max(b.opened - b.auto_remediated - b.escalated, 0)),
            ],
            f"{b.start:%Y-%m-%d %H:%M}: {b.opened} opened, {b.auto_remediated} auto-remediated, "
            f"{b.escalated} escalated",
        )
        for b in report.series
    ]
    mttr = [
        Bar(
            f"{b.start:{label}}",
            [("fill-mttr", (b.mttr_median_seconds or 0) / 60)],
            f"{b.start:%Y-%m-%d %H:%M}: median time to resolve "
            + (f"{b.mttr_median_seconds / 60:.1f} min" if b.mttr_median_seconds else "—"),
        )
        for b in report.series
    ]
    breach = [
        Bar(
            p.priority,
            [("fill-breach", (p.sla_breach_rate or 0) * 100)],
            f"{p.priority}: {p.sla_breached} of {p.incidents} breached an SLA",
        )
        for p in report.by_priority
    ]
    return {
        "outcome": bar_chart(outcome, caption="Incidents opened, by outcome"),
        "mttr": bar_chart(mttr, caption="Median time to resolve (minutes)", unit=" min"),
        "breach": bar_chart(breach, caption="SLA breach rate per priority", unit=" %"),
    }
