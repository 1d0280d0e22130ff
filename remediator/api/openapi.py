"""The OpenAPI 3.1 document at /api/v1/openapi.json, built from the API's pydantic models."""

from __future__ import annotations

from functools import cache
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from remediator import __version__
from remediator.api import models
from remediator.api.errors import json_body
from remediator.intake.model import WebhookBody
from remediator.reports.quality import QualityReport

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


_ERRORS = {
    "400": _json("Error", "invalid input; `details` names each field path"),
    "401": _json("Error", "no or wrong bearer token"),
    "403": _json("Error", "the token's role is too low"),
}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}


def _operation(summary: str, role: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "description": f"Needs role `{role}` or higher when API tokens are configured.",
        "responses": {**responses, **_ERRORS},
        **extra,
    }


def _body(name: str, required: bool = False) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _ref(name)}}}


def _ack_link(what: str = "acknowledge", does: str = "Acknowledge") -> dict[str, Any]:
    """The signed link in pages: no token; its signature and expiry are the credential."""
    params = [
        _ID,
        {"name": "expires", "in": "query", "required": True, "schema": {"type": "integer"}},
        {"name": "signature", "in": "query", "required": True, "schema": {"type": "string"}},
    ]
    html = {"content": {"text/html": {"schema": {"type": "string"}}}}
    refused = {"description": "bad, expired or disabled link", **html}

    def operation(summary: str, ok: str) -> dict[str, Any]:
        return {
            "summary": summary,
            "description": "Public: the link's HMAC signature and expiry authorize it.",
            "parameters": params,
            "responses": {"200": {"description": ok, **html}, "403": refused},
        }

    return {
        "get": operation(f"Confirmation page of a signed {what} link", "the page"),
        "post": operation(f"{does} through a signed link", "done"),
    }


def _period_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": "string"}, "description": description}


def _report_paths() -> dict[str, Any]:
    csv = {"text/csv": {"schema": {"type": "string"}}}
    ok = {
        "description": "the report; CSV rows are `metric,scope,value`",
        "content": {**_json("QualityReport", "")["content"], **csv},
    }
    params = [
        _period_param("from", "start (a date or RFC 3339 time); default 30 days before `to`"),
        _period_param("to", "end, exclusive (a date includes that day); default now"),
        {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"]}},
    ]
    return {
        "/api/v1/reports/quality": {
            "get": _operation(
                "Service-quality indicators over incidents opened in a period",
                "viewer",
                {"200": ok},
                parameters=params,
            )
        }
    }


def _guard_paths() -> dict[str, Any]:
    guards = {"description": "the guards' state (pause, windows, rules, running, approvals)"}
    job = {"description": "the job after the decision"}
    no_job = _json("Error", "no such job")
    decided = _json("Error", "the job is not awaiting approval")
    rule = {"name": "rule", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/api/v1/guards": {
            "get": _operation(
                "Guard state: pause, breakers, rate limits", "viewer", {"200": guards}
            )
        },
        "/api/v1/guards/pause": {
            "post": _operation(
                "Pause all automation (the kill switch)",
                "operator",
                {"200": guards},
                requestBody=_body("PauseRequest", required=True),
            )
        },
        "/api/v1/guards/resume": {
            "post": _operation(
                "Resume automation",
                "operator",
                {"200": guards, "409": _json("Error", "automation was not paused")},
            )
        },
        "/api/v1/guards/breakers/{rule}/close": {
            "post": _operation(
                "Close a rule's circuit breaker early",
                "operator",
                {"200": guards, "404": _json("Error", "no such rule")},
                parameters=[rule],
            )
        },
        "/api/v1/jobs/{id}/approve": {
            "post": _operation(
                "Approve a remediation job that waits for approval",
                "operator",
                {"200": job, "404": no_job, "409": decided},
                parameters=[_ID],
                requestBody=_body("DecisionRequest"),
            )
        },
        "/api/v1/jobs/{id}/reject": {
            "post": _operation(
                "Reject a waiting job; its incident escalates",
                "operator",
                {"200": job, "404": no_job, "409": decided},
                parameters=[_ID],
                requestBody=_body("DecisionRequest"),
            )
        },
        "/api/v1/jobs/{id}/approval-link": _ack_link("approval", "Approve or reject"),
    }


def _paths() -> dict[str, Any]:
    list_params = [
        {
            "name": n,
            "in": "query",
            "schema": {"type": "array", "items": {"type": "string"}},
            "style": "form",
            "explode": True,
            "description": d,
        }
        for n, d in (
            ("state", "keep incidents in any of these states"),
            ("priority", "keep incidents of any of these priorities (P1..P4)"),
            ("rule", 'keep incidents opened by any of these rules ("" for no rule)'),
            ("match", 'Alertmanager label matchers on common labels, e.g. service="checkout"'),
        )
    ] + [
        _period_param("from", "opened at or after this date or RFC 3339 time"),
        _period_param("to", "opened before this time (a date includes that day)"),
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 500},
        },
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
    ]
    not_found = _json("Error", "no such incident")
    conflict = _json("Error", "the incident's state does not allow this")
    detail = _json("IncidentDetail", "the incident after the change")
    return {
        "/api/v1/webhooks/alertmanager": {
            "post": {
                "summary": "Alertmanager webhook receiver (version 4)",
                "requestBody": _body("WebhookBody", required=True),
                "responses": {
                    "200": {"description": "every alert stored and processed"},
                    "400": _json("Error", "not a valid webhook body; Alertmanager will not retry"),
                    "401": _json("Error", "webhook credentials missing or wrong"),
                    "413": _json("Error", "body larger than intake.max_body_bytes"),
                    "415": _json("Error", "content type is not application/json"),
                    "503": _json("Error", "storage failed; Alertmanager retries"),
                },
            }
        },
        "/api/v1/incidents": {
            "get": _operation(
                "List incidents, newest first",
                "viewer",
                {"200": _json("IncidentPage", "one page")},
                parameters=list_params,
            )
        },
        "/api/v1/incidents/{id}": {
            "get": _operation(
                "An incident with its alerts and timeline",
                "viewer",
                {"200": _json("IncidentDetail", "the incident"), "404": not_found},
                parameters=[_ID],
            )
        },
        "/api/v1/incidents/{id}/ack": {
            "post": _operation(
                "Acknowledge",
                "operator",
                {"200": detail, "404": not_found, "409": conflict},
                parameters=[_ID],
                requestBody=_body("AckRequest"),
            )
        },
        "/api/v1/incidents/{id}/resolve": {
            "post": _operation(
                "Resolve by hand",
                "operator",
                {"200": detail, "404": not_found, "409": conflict},
                parameters=[_ID],
                requestBody=_body("ResolveRequest"),
            )
        },
        "/api/v1/incidents/{id}/notes": {
            "post": _operation(
                "Add a note to the timeline",
                "operator",
                {"201": detail, "404": not_found},
                parameters=[_ID],
                requestBody=_body("NoteRequest", required=True),
            )
        },
        "/api/v1/incidents/{id}/ack-link": _ack_link(),
        "/api/v1/channels/{name}/events": {
            "post": {
                "summary": "A paging system reports acknowledgements and resolutions back",
                "description": "Public: the channel verifies the request (e.g. PagerDuty's "
                "X-PagerDuty-Signature). Events name the incident by its dedup key.",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {"description": "received and applied event counts"},
                    "400": _json("Error", "malformed"),
                    "401": _json("Error", "signature missing or wrong"),
                    "404": _json("Error", "no such channel, or it takes no events"),
                },
            }
        },
        "/api/v1/rules": {
            "get": _operation("Rules in force", "viewer", {"200": _json("RuleList", "the rules")})
        },
        **_guard_paths(),
        **_report_paths(),
        "/-/reload": {
            "post": _operation(
                "Reload rule files; a bad file keeps the old rules",
                "admin",
                {
                    "200": _json("ReloadResult", "reloaded"),
                    "400": _json("ReloadResult", "rejected; old rules kept"),
                },
            )
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    schema_models: list[type[BaseModel]] = [
        models.Incident,
        models.IncidentDetail,
        models.IncidentPage,
        models.AckRequest,
        models.ResolveRequest,
        models.NoteRequest,
        models.RuleList,
        models.ReloadResult,
        models.PauseRequest,
        models.DecisionRequest,
        models.Error,
        QualityReport,
        WebhookBody,
    ]
    _, definitions = models_json_schema(
        [(m, "validation") for m in schema_models], ref_template=_REF
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "remediator",
            "version": __version__,
            "description": "Alert intake, incidents and rules of remediator.",
        },
        "components": {
            "schemas": definitions["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": _paths(),
    }


async def openapi_json(_request: web.Request) -> web.Response:
    return json_body(openapi_document())
