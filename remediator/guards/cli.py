"""`remediator guards …`: the guards of a running service, through its HTTP API.

Through the API rather than the database, so that every change is made as a token's
principal, checked against its role, and seen by every replica at once. The service is
found at `--url` (default `$REMEDIATOR_URL`, else http://127.0.0.1:9095); the bearer token
comes from `$REMEDIATOR_TOKEN` or `--token-file`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

DEFAULT_URL = "http://127.0.0.1:9095"


def add_parser(sub: Any) -> None:
    """Register `guards` and its actions on the CLI's subparsers."""
    guards = sub.add_parser("guards", help="show or change the safety guards of a running service")
    guards.add_argument("--url", default=os.environ.get("REMEDIATOR_URL", DEFAULT_URL))
    guards.add_argument("--token-file", type=Path, help="file holding the API token")
    guards.add_argument("--json", action="store_true", help="print the API's JSON")
    actions = guards.add_subparsers(metavar="action")
    guards.set_defaults(func=_run, method="GET", path="/api/v1/guards", body=None)

    pause = actions.add_parser("pause", help="stop all new actions at once (the kill switch)")
    pause.add_argument("--reason", required=True, help="shown on every blocked incident")
    pause.add_argument("--for", dest="duration", help="resume by itself after this, e.g. 2h")
    pause.set_defaults(method="POST", path="/api/v1/guards/pause", body=_pause_body)

    resume = actions.add_parser("resume", help="let automation act again")
    resume.set_defaults(method="POST", path="/api/v1/guards/resume")

    close = actions.add_parser("close-breaker", help="close a rule's circuit breaker early")
    close.add_argument("rule")
    close.set_defaults(
        method="POST", path=lambda a: f"/api/v1/guards/breakers/{quote(a.rule)}/close"
    )

    approve = actions.add_parser("approve", help="approve a remediation job that waits")
    approve.add_argument("job", type=int)
    approve.set_defaults(method="POST", path=lambda a: f"/api/v1/jobs/{a.job}/approve")

    reject = actions.add_parser("reject", help="reject a waiting job; its incident escalates")
    reject.add_argument("job", type=int)
    reject.add_argument("--note", help="why, for the timeline")
    reject.set_defaults(
        method="POST",
        path=lambda a: f"/api/v1/jobs/{a.job}/reject",
        body=lambda a: {"note": a.note} if a.note else {},
    )


def _pause_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"reason": args.reason}
    if args.duration:
        body["for"] = args.duration
    return body


def _run(args: argparse.Namespace) -> int:
    path = args.path(args) if callable(args.path) else args.path
    body = args.body(args) if callable(args.body) else args.body
    try:
        status, answer = _call(args, args.method, path, body)
    except urllib.error.URLError as exc:
        print(f"cannot reach remediator at {args.url}: {exc.reason} (set --url)", file=sys.stderr)
        return 1
    if status >= 400:
        print(f"{args.method} {path}: {status}: {_error_text(answer)}", file=sys.stderr)
        return 1
    if args.json or "guards" not in path:
        print(json.dumps(answer, indent=2))
    else:
        print(render_status(answer))
    return 0


def _call(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None
) -> tuple[int, Any]:
    headers = {"Accept": "application/json"}
    token = _token(args)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if method == "POST":
        data = json.dumps(body or {}).encode()
        headers["Content-Type"] = "application/json"
    if not args.url.startswith(("http://", "https://")):
        raise urllib.error.URLError(f"--url must be an http(s) URL, not {args.url!r}")
    url = args.url.rstrip("/") + path
    request = urllib.request.Request(url, data, headers, method=method)  # noqa: S310 (http(s) only, checked above)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file is not None:
        return str(args.token_file.read_text().strip())
    return os.environ.get("REMEDIATOR_TOKEN")


def _error_text(answer: Any) -> str:
    if not isinstance(answer, dict):
        return str(answer)
    details = "; ".join(
        f"{d.get('path')}: {d.get('message')}" if d.get("path") else str(d.get("message"))
        for d in answer.get("details", [])
    )
    return f"{answer.get('error', answer)}" + (f" ({details})" if details else "")


def render_status(status: dict[str, Any]) -> str:
    """The guards' state for a terminal: pause, windows, rules, running targets, approvals."""
    lines = []
    pause = status.get("paused")
    if pause:
        until = f" until {pause['until']}" if pause.get("until") else ""
        lines.append(
            f"AUTOMATION PAUSED by {pause['by']} since {pause['since']}{until}: {pause['reason']}"
        )
    else:
        lines.append("automation: active")
    for window in status.get("maintenance_windows", []):
        state = f"ACTIVE until {window['ends_at']}" if window["active"] else "inactive"
        lines.append(f"maintenance window {window['name']}: {state}")
    lines.append("")
    lines.append(f"{'RULE':<36} {'BREAKER':<10} {'FAILS':>5}  RATE LIMIT")
    for rule in status.get("rules", []):
        breaker = rule["breaker"]
        rate = rule["guards"].get("rate_limit")
        usage = (
            ", ".join(
                f"{u['key'] or 'all'}: {u['used']}/{rate['limit']}"
                for u in rule["rate_limit_usage"]
            )
            if rate
            else "-"
        )
        if rate and not rule["rate_limit_usage"]:
            usage = f"0/{rate['limit']}"
        state = breaker["state"]
        if breaker.get("open_until") and state != "closed":
            state += f" (until {breaker['open_until']})"
        lines.append(f"{rule['rule']:<36} {state:<10} {breaker['failures']:>5}  {usage}")
    running = status.get("running", [])
    if running:
        lines.append("")
        lines.append(
            "being remediated: " + ", ".join(f"{r['target']} ({r['rule']})" for r in running)
        )
    approvals = status.get("approvals", [])
    for job in approvals:
        lines.append(
            f"awaiting approval: job {job['job_id']} (incident {job['incident_id']}, rule "
            f"{job['rule']}) until {job['due_at']}: remediator guards approve {job['job_id']}"
        )
    return "\n".join(lines)
