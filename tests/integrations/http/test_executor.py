"""The http executor against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from remediator_integrations.http import PLUGIN, HttpAction, HttpExecutor, HttpSettings
from remediator_integrations.http.executor import MAX_OUTPUT_BYTES, checked_url

from remediator.plugins import ActionFailed, ActionRequest, ExecutorContext, PluginError
from remediator.rules.compiled import compile_action
from remediator.rules.templating import render_context, render_params

from .conftest import Endpoint

Make = Callable[..., HttpExecutor]


def request(dry_run: bool = False, **params: Any) -> ActionRequest:
    """An ActionRequest with already-rendered params, as the core builds it."""
    return ActionRequest(
        job_id=1,
        incident_id=7,
        rule="restart",
        action_index=0,
        attempt=1,
        params={"type": "http", "retries": 0, **params},
        labels={"service": "web"},
        annotations={},
        dry_run=dry_run,
    )


async def fail(executor: HttpExecutor, req: ActionRequest) -> ActionFailed:
    with pytest.raises(ActionFailed) as caught:
        await executor.run(req)
    return caught.value


async def test_post_sends_method_path_headers_and_json_body(
    endpoint: Endpoint, make_executor: Make
) -> None:
    url = endpoint.url("/api/restart/web?force=1")
    body = {"reason": "remediator incident 7", "service": "web", "n": [1, True, None]}
    result = await make_executor().run(
        request(method="POST", url=url, headers={"X-Team": "sre"}, body=body)
    )

    assert result.summary == f"POST {url} → 202"
    assert result.output == '{"ok": true}'
    assert result.data == {"status": 202}
    [seen] = endpoint.seen
    assert (seen.method, seen.path, seen.query) == ("POST", "/api/restart/web", "force=1")
    assert seen.headers["X-Team"] == "sre"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["User-Agent"] == "remediator"
    assert "Authorization" not in seen.headers
    assert json.loads(seen.body) == body


async def test_methods_and_a_get_without_body(endpoint: Endpoint, make_executor: Make) -> None:
    executor = make_executor()
    endpoint.status = 200
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        await executor.run(request(method=method, url=endpoint.url("/x")))

    assert [seen.method for seen in endpoint.seen] == ["GET", "PUT", "PATCH", "DELETE"]
    assert endpoint.seen[0].body == b""
    assert "Content-Type" not in endpoint.seen[0].headers


async def test_rule_content_type_is_kept(endpoint: Endpoint, make_executor: Make) -> None:
    headers = {"content-type": "application/merge-patch+json"}
    await make_executor().run(request(url=endpoint.url("/x"), headers=headers, json={"a": "1"}))

    assert endpoint.seen[0].headers.getall("Content-Type") == ["application/merge-patch+json"]
    assert json.loads(endpoint.seen[0].body) == {"a": "1"}


async def test_label_values_arrive_literally_through_the_core_rendering(
    endpoint: Endpoint, make_executor: Make
) -> None:
    rule_action = yaml.safe_load(
        f"""
        type: http
        url: "{endpoint.base}/api/restart/{{{{ labels.service | urlencode }}}}"
        headers: {{X-Service: "{{{{ labels.service }}}}"}}
        json: {{reason: "incident {{{{ incident.id }}}}", service: "{{{{ labels.service }}}}",
                count: 3}}
        expect_status: [202]
        """
    )
    compiled = compile_action(HttpAction.model_validate(rule_action))
    context = render_context({"service": "{{ 7*7 }}"}, {}, {}, {"id": 7})
    params = render_params(compiled.params, context)

    await make_executor().run(request(**params))

    [seen] = endpoint.seen
    assert seen.path == "/api/restart/{{ 7*7 }}"
    assert seen.headers["X-Service"] == "{{ 7*7 }}"
    assert json.loads(seen.body) == {"reason": "incident 7", "service": "{{ 7*7 }}", "count": 3}


@pytest.mark.parametrize(
    ("status", "reason", "retryable"),
    [
        (503, "Service Unavailable", True),
        (500, "Internal Server Error", True),
        (429, "Too Many Requests", True),
        (404, "Not Found", False),
        (400, "Bad Request", False),
        (302, "Found", False),  # redirects are not followed
    ],
)
async def test_unexpected_status_fails_with_body_as_output(
    endpoint: Endpoint, make_executor: Make, status: int, reason: str, retryable: bool
) -> None:
    endpoint.status, endpoint.reply = status, b"deployer says no"
    url = endpoint.url("/restart")

    error = await fail(make_executor(), request(url=url))

    assert error.summary == f"POST {url} → {status} {reason}"
    assert error.retryable is retryable
    assert error.output == "deployer says no"


async def test_expect_status_decides_success(endpoint: Endpoint, make_executor: Make) -> None:
    executor = make_executor()
    endpoint.status = 200
    error = await fail(executor, request(url=endpoint.url("/x"), expect_status=[202]))
    assert not error.retryable
    endpoint.status = 503
    result = await executor.run(request(url=endpoint.url("/x"), expect_status=[503]))
    assert result.summary.endswith("→ 503")


async def test_output_is_capped(endpoint: Endpoint, make_executor: Make) -> None:
    endpoint.reply = b"a" * (MAX_OUTPUT_BYTES + 10)

    result = await make_executor().run(request(url=endpoint.url("/big")))

    assert result.output.startswith("a" * MAX_OUTPUT_BYTES)
    assert result.output.endswith("(truncated at 64 KiB)")


async def test_connection_refused_is_retryable(make_executor: Make) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    error = await fail(make_executor(), request(url=f"http://127.0.0.1:{port}/x"))

    assert error.retryable
    assert error.summary.startswith(f"POST http://127.0.0.1:{port}/x → ")


async def test_settings_timeout_is_retryable(endpoint: Endpoint, make_executor: Make) -> None:
    executor = make_executor(timeout="200ms")

    error = await fail(executor, request(url=endpoint.url("/slow/x")))

    assert error.retryable
    assert error.summary == f"POST {endpoint.url('/slow/x')} → timed out after 0.2s"


async def test_cancelling_closes_the_connection(endpoint: Endpoint, make_executor: Make) -> None:
    task = asyncio.create_task(make_executor().run(request(url=endpoint.url("/slow/restart"))))
    await asyncio.wait_for(endpoint.slow_started.wait(), 5)

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(endpoint.slow_cancelled.wait(), 5)


async def test_allowed_hosts_refuses_other_hosts(endpoint: Endpoint, make_executor: Make) -> None:
    executor = make_executor(allowed_hosts=["deployer.internal"])

    error = await fail(executor, request(url=endpoint.url("/x")))

    assert not error.retryable
    assert "host 127.0.0.1 is not in executors.http.allowed_hosts" in error.summary
    assert endpoint.seen == []


async def test_allowed_hosts_lets_listed_hosts_through(
    endpoint: Endpoint, make_executor: Make
) -> None:
    await make_executor(allowed_hosts=["127.0.0.1"]).run(request(url=endpoint.url("/x")))
    assert len(endpoint.seen) == 1


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "a\rb", "a\x00b"])
async def test_header_with_line_break_is_refused(
    endpoint: Endpoint, make_executor: Make, value: str
) -> None:
    error = await fail(make_executor(), request(url=endpoint.url("/x"), headers={"X-A": value}))

    assert not error.retryable
    assert error.summary == (
        "refusing header 'X-A': its value contains a line break or control character"
    )
    assert endpoint.seen == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://svc/restart/web 1", "whitespace or control characters"),
        ("http://svc/restart/a\r\nHost: evil", "whitespace or control characters"),
        ("http://svc/restart/\x7f", "whitespace or control characters"),
        ("http://svc/restart/\u2028", "whitespace or control characters"),
        ("ftp://svc/restart", "only http:// and https://"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("svc/restart", "only http:// and https://"),
        ("http:///restart", "only http:// and https://"),
        ("http://user:pw@svc/restart", "credentials belong in executors.http settings"),
        ("http://svc/api/restart/../../admin", ". or .. segments"),
        ("http://svc/api/restart/%2E%2E/admin", ". or .. segments"),
        ("http://svc/api/./restart", ". or .. segments"),
        ("http://svc:99999/restart", "refusing url"),
    ],
)
def test_checked_url_refuses(url: str, why: str) -> None:
    with pytest.raises(ActionFailed) as caught:
        checked_url(url, None)
    assert why in caught.value.summary
    assert not caught.value.retryable


def test_checked_url_accepts_encoded_values_and_normalised_hosts() -> None:
    url = checked_url("https://Deployer.Internal./api/a%2Fb?x=%7B%7B", ["deployer.internal"])
    assert url.raw_path == "/api/a%2Fb"
    assert checked_url("http://[::1]:8080/x", ["::1"]).port == 8080


async def test_dry_run_sends_nothing(endpoint: Endpoint, make_executor: Make) -> None:
    url = endpoint.url("/restart")

    result = await make_executor().run(
        request(dry_run=True, url=url, body={"service": "web", "n": 1})
    )

    assert result.summary == f'dry run: would POST {url} with body {{"service": "web", "n": 1}}'
    assert endpoint.seen == []


async def test_dry_run_still_applies_the_checks(make_executor: Make) -> None:
    executor = make_executor(allowed_hosts=["svc"])
    error = await fail(executor, request(dry_run=True, url="http://other/x"))
    assert "allowed_hosts" in error.summary
    result = await executor.run(request(dry_run=True, method="DELETE", url="http://svc/x"))
    assert result.summary == "dry run: would DELETE http://svc/x with no body"


async def test_invalid_params_are_not_retryable(make_executor: Make) -> None:
    error = await fail(make_executor(), request(method="TRACE", url="http://svc/x"))
    assert not error.retryable
    assert error.summary.startswith("invalid http action parameters")
    error = await fail(make_executor(), request(url="http://svc/x", body={"a": {1, 2}}))
    assert not error.retryable
    assert error.summary.startswith("the json body cannot be encoded")


async def test_bearer_token_from_env(
    endpoint: Endpoint, make_executor: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYER_TOKEN", "s3cret")
    executor = make_executor(allowed_hosts=["127.0.0.1"], bearer_token={"env": "DEPLOYER_TOKEN"})

    await executor.run(request(url=endpoint.url("/x")))

    assert endpoint.seen[0].headers["Authorization"] == "Bearer s3cret"


async def test_basic_auth_from_file_read_per_request(
    endpoint: Endpoint, make_executor: Make, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text("pw1\n")
    executor = make_executor(
        allowed_hosts=["127.0.0.1"],
        basic_auth={"username": "remediator", "password": {"file": str(secret)}},
    )

    await executor.run(request(url=endpoint.url("/x")))
    secret.write_text("pw2\n")  # rotated
    await executor.run(request(url=endpoint.url("/x")))

    assert [seen.headers["Authorization"] for seen in endpoint.seen] == [
        "Basic cmVtZWRpYXRvcjpwdzE=",  # remediator:pw1
        "Basic cmVtZWRpYXRvcjpwdzI=",
    ]


async def test_missing_secret_fails_at_create(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    settings = HttpSettings.model_validate(
        {"allowed_hosts": ["svc"], "bearer_token": {"env": "NO_SUCH_TOKEN"}}
    )
    context = ExecutorContext(playbooks_dir=Path(), data_dir=Path(), settings=settings)

    with pytest.raises(PluginError, match="NO_SUCH_TOKEN is not set"):
        PLUGIN.create(context)


async def test_close_is_idempotent_and_a_later_run_reopens(
    endpoint: Endpoint, make_executor: Make
) -> None:
    executor = make_executor()
    await executor.close()
    await executor.run(request(url=endpoint.url("/x")))
    await executor.close()
    await executor.close()
    await executor.run(request(url=endpoint.url("/x")))
    assert len(endpoint.seen) == 2


async def test_concurrent_runs_share_one_session(endpoint: Endpoint, make_executor: Make) -> None:
    executor = make_executor()
    await asyncio.gather(*(executor.run(request(url=endpoint.url(f"/{i}"))) for i in range(20)))
    assert sorted(seen.path for seen in endpoint.seen) == sorted(f"/{i}" for i in range(20))
