"""`remediator guards …` against a real service on 127.0.0.1, through its HTTP API.

`main()` is synchronous (urllib): it runs in a thread while the service runs on the loop.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpServer

from remediator.app import create_app
from remediator.cli import main
from remediator.config import Config
from remediator.metrics import Metrics

RULES = """
rules:
  - name: disk
    match: ['alertname="DiskWillFillIn4Hours"']
    dry_run: true
    actions:
      - {type: http, url: "http://127.0.0.1:9/restart/{{ labels.service }}", json: {}}
  - name: crashloop
    match: ['alertname="KubePodCrashLooping"']
    dry_run: true
    guards: {rate_limit: "5 per 1h"}
    actions:
      - {type: http, url: "http://127.0.0.1:9/restart/{{ labels.pod }}", json: {}}
"""
AUTH = {
    "tokens": [
        {"name": "dash", "token": "view-token", "role": "viewer"},
        {"name": "oncall", "token": "oncall-token", "role": "operator"},
    ]
}


@pytest.fixture
async def url(
    aiohttp_server: AiohttpServer,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """A running remediator; the CLI reads with the viewer token from $REMEDIATOR_TOKEN."""
    (tmp_path / "rules.yml").write_text(RULES)
    config = Config.model_validate(
        {
            "database_url": db_url,
            "rules": [str(tmp_path / "rules.yml")],
            "base_dir": tmp_path,
            "auth": AUTH,
        }
    )
    server = await aiohttp_server(create_app(config, metrics=Metrics()), host="127.0.0.1")
    monkeypatch.delenv("REMEDIATOR_URL", raising=False)
    monkeypatch.setenv("REMEDIATOR_TOKEN", "view-token")
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
def operator(tmp_path: Path) -> list[str]:
    """`--token-file` options with the operator's token (it wins over $REMEDIATOR_TOKEN)."""
    path = tmp_path / "oncall-token"
    path.write_text("oncall-token\n")
    return ["--token-file", str(path)]


async def guards(*argv: str) -> int:
    return await asyncio.to_thread(main, ["guards", *argv])


def table(out: str) -> dict[str, list[str]]:
    """The rules table: rule name → its columns."""
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("RULE"))
    assert lines[header].split() == ["RULE", "BREAKER", "FAILS", "RATE", "LIMIT"]
    rows = {}
    for line in lines[header + 1 :]:
        if not line.strip():
            break
        name, *columns = line.split()
        rows[name] = columns
    return rows


async def test_status_pause_and_resume(
    url: str, operator: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert await guards("--url", url) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "automation: active"
    assert table(out) == {"disk": ["closed", "0", "-"], "crashloop": ["closed", "0", "0/5"]}

    assert await guards("--url", url, *operator, "pause", "--reason", "x", "--for", "30m") == 0
    out = capsys.readouterr().out
    assert out.startswith("AUTOMATION PAUSED by oncall since ")
    assert out.splitlines()[0].endswith(": x")

    assert await guards("--url", url) == 0  # as the viewer: everyone sees the pause
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("AUTOMATION PAUSED by oncall since ")
    assert " until " in first
    assert await guards("--url", url, "--json") == 0
    paused = json.loads(capsys.readouterr().out)["paused"]
    assert (paused["by"], paused["reason"]) == ("oncall", "x")
    assert paused["until"] is not None

    assert await guards("--url", url, *operator, "resume") == 0
    assert capsys.readouterr().out.splitlines()[0] == "automation: active"
    assert await guards("--url", url, *operator, "resume") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        "POST /api/v1/guards/resume: 409: automation is not paused: nothing to resume"
    )


async def test_api_refusals_exit_1_with_the_api_message(
    url: str, operator: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert await guards("--url", url, *operator, "approve", "999") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == "POST /api/v1/jobs/999/approve: 404: job 999 does not exist"

    assert await guards("--url", url, *operator, "close-breaker", "nope") == 1
    err = capsys.readouterr().err
    assert err.startswith("POST /api/v1/guards/breakers/nope/close: 404: ")
    assert "nope" in err.removeprefix("POST /api/v1/guards/breakers/nope/close: 404: ")

    # The viewer token of $REMEDIATOR_TOKEN may look, not pause.
    assert await guards("--url", url, "pause", "--reason", "x") == 1
    err = capsys.readouterr().err
    assert err.startswith("POST /api/v1/guards/pause: 403: ")
    assert "operator" in err
    assert await guards("--url", url) == 0
    assert capsys.readouterr().out.splitlines()[0] == "automation: active"

    # A bad duration: the API names the field.
    assert await guards("--url", url, *operator, "pause", "--reason", "x", "--for", "soon") == 1
    err = capsys.readouterr().err
    assert err.startswith("POST /api/v1/guards/pause: 400: invalid request body (for: ")


async def test_closing_a_breaker_says_who_closed_it(
    url: str, operator: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert await guards("--url", url, *operator, "close-breaker", "disk") == 0
    assert table(capsys.readouterr().out)["disk"] == ["closed", "0", "-"]
    assert await guards("--url", url, "--json") == 0
    rules = json.loads(capsys.readouterr().out)["rules"]
    [disk] = [rule for rule in rules if rule["rule"] == "disk"]
    assert disk["breaker"]["changed_by"] == "oncall"


def test_an_unreachable_service_exits_1_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as bound:  # bound, not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        assert main(["guards", "--url", url]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"cannot reach remediator at {url}: ")
    assert "(set --url)" in captured.err

    assert main(["guards", "--url", "127.0.0.1:9095", "resume"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cannot reach remediator at 127.0.0.1:9095: ")
    assert "must be an http(s) URL" in err
