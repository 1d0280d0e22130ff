"""The awx executor against a local server that enforces the Controller API v2 contract."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from remediator_integrations.awx import PLUGIN, AwxAction, AwxExecutor, AwxFailed, AwxSettings
from remediator_integrations.awx.executor import MAX_OUTPUT_BYTES, recap

from remediator.plugins import ActionRequest, ExecutorContext, PluginError
from remediator.rules.compiled import compile_action
from remediator.rules.templating import render_context, render_params

from .conftest import BASIC, FAILED_RECAP, READ_ONLY_TOKEN, RECAP, Controller

Make = Callable[..., AwxExecutor]
HOSTILE = "{{ 7*7 }}'; rm -rf / #"


def request(dry_run: bool = False, **params: Any) -> ActionRequest:
    """An ActionRequest with already-rendered params, as the core builds it."""
    return ActionRequest(
        job_id=1,
        incident_id=7,
        rule="restart-db",
        action_index=0,
        attempt=1,
        params={"type": "awx", "retries": 0, **params},
        labels={"service": "db"},
        annotations={},
        dry_run=dry_run,
    )


async def fail(executor: AwxExecutor, req: ActionRequest) -> AwxFailed:
    with pytest.raises(AwxFailed) as caught:
        await executor.run(req)
    return caught.value


async def test_success_launches_with_data_follows_and_summarises(
    controller: Controller, make_executor: Make
) -> None:
    rule_action = yaml.safe_load(
        """
        type: awx
        job_template: restart-db
        extra_vars: {service: "{{ labels.service }}", incident: "{{ incident.id }}"}
        limit: "{{ labels.host }}"
        """
    )
    compiled = compile_action(AwxAction.model_validate(rule_action))
    context = render_context({"service": HOSTILE, "host": "db-1"}, {}, {}, {"id": 7})
    params = render_params(compiled.params, context)

    result = await make_executor().run(request(**params))

    [body] = controller.launches
    assert body == {"extra_vars": {"service": HOSTILE, "incident": "7"}, "limit": "db-1"}
    [job] = controller.jobs.values()
    assert job.extra_vars == {"service": HOSTILE, "incident": "7"}  # verbatim, as data
    assert result.summary == (
        f"AWX job {job.id} (template 'restart-db') successful in 12.3s; db-1 ok=2 changed=1"
    )
    assert result.output == f"AWX job {job.id}, template 'restart-db': successful\n{RECAP}"
    assert result.data["recap"] == {
        "db-1": {
            "ok": 2,
            "changed": 1,
            "unreachable": 0,
            "failed": 0,
            "skipped": 0,
            "rescued": 0,
            "ignored": 0,
        }
    }
    assert (result.data["job_id"], result.data["job_template_id"]) == (job.id, 7)
    assert job.polls == 3  # pending, running, successful
    assert controller.requests[0] == ("GET", "/api/v2/job_templates/?name=restart-db")
    assert ("GET", f"/api/v2/jobs/{job.id}/stdout/?format=txt") in controller.requests


async def test_template_by_name_is_looked_up_once(
    controller: Controller, make_executor: Make
) -> None:
    executor = make_executor()
    await executor.run(request(job_template="restart-db"))
    await executor.run(request(job_template="restart-db"))

    lookups = [
        path for _, path in controller.requests if path.startswith("/api/v2/job_templates/?")
    ]
    assert lookups == ["/api/v2/job_templates/?name=restart-db"]
    launches = [path for method, path in controller.requests if method == "POST"]
    assert launches == ["/api/v2/job_templates/7/launch/"] * 2


async def test_template_by_id_needs_no_lookup(controller: Controller, make_executor: Make) -> None:
    result = await make_executor().run(request(job_template_id=7, limit="db-1"))

    assert controller.requests[0] == ("POST", "/api/v2/job_templates/7/launch/")
    assert controller.launches == [{"limit": "db-1"}]  # no extra_vars key when none are given
    assert "(template 'restart-db')" in result.summary  # the name the controller gave the job


async def test_a_failed_job_fails_with_its_stdout(
    controller: Controller, make_executor: Make
) -> None:
    controller.job_script = ["running", "failed"]
    controller.job_stdout = FAILED_RECAP

    error = await fail(make_executor(), request(job_template="restart-db"))

    [job] = controller.jobs.values()
    assert not error.retryable
    assert error.summary == (
        f"AWX job {job.id} (template 'restart-db') failed in 12.3s; db-1 ok=1 changed=0 failed=1"
    )
    assert "Unit postgresql.service not found." in error.output


@pytest.mark.parametrize(("status", "words"), [("error", "ended in error"), ("canceled", "was")])
async def test_error_and_canceled_jobs_fail(
    controller: Controller, make_executor: Make, status: str, words: str
) -> None:
    controller.job_script = ["pending", status]
    error = await fail(make_executor(), request(job_template_id=7))
    assert words in error.summary
    assert not error.retryable


async def test_bad_token_says_to_check_the_token(
    controller: Controller, make_executor: Make
) -> None:
    error = await fail(make_executor(token="wrong"), request(job_template="restart-db"))

    assert not error.retryable
    assert error.status == 401
    assert error.summary == (
        "looking up AWX job template 'restart-db': 401 Unauthorized (Invalid token.): check "
        "the token (or username/password) in executors.awx: missing, expired or revoked"
    )
    assert controller.launches == []


async def test_missing_permission_names_it(controller: Controller, make_executor: Make) -> None:
    error = await fail(make_executor(token=READ_ONLY_TOKEN), request(job_template="restart-db"))

    assert not error.retryable
    assert error.summary.startswith(
        "launching AWX job template 'restart-db': 403 Forbidden "
        "(You do not have permission to perform this action.): "
    )
    assert "needs Execute on the job template" in error.summary


async def test_unknown_template_name_and_id(controller: Controller, make_executor: Make) -> None:
    executor = make_executor()
    by_name = await fail(executor, request(job_template="restart-dv"))
    by_id = await fail(executor, request(job_template_id=999))

    assert by_name.summary.startswith("AWX job template 'restart-dv' not found: check job_template")
    assert by_id.summary.startswith("launching AWX job template 999: 404 Not Found (Not found.)")
    assert "check job_template / job_template_id" in by_id.summary
    assert not by_name.retryable
    assert not by_id.retryable
    assert controller.jobs == {}


async def test_an_ambiguous_name_asks_for_the_id(
    controller: Controller, make_executor: Make
) -> None:
    error = await fail(make_executor(), request(job_template="twin"))
    assert error.summary == (
        "2 AWX job templates are named 'twin' (ids 9, 10, in different organizations): "
        "use job_template_id"
    )


async def test_ignored_fields_fail_and_the_job_is_cancelled(
    controller: Controller, make_executor: Make
) -> None:
    controller.job_script = ["pending"]

    error = await fail(
        make_executor(), request(job_template="no-prompts", extra_vars={"a": "1"}, limit="db-1")
    )

    [job] = controller.jobs.values()
    assert not error.retryable
    assert error.summary == (
        "AWX job template 'no-prompts' ignored extra_vars, limit: turn on \"Prompt on launch\" "
        f"for extra_vars, limit in the job template (job {job.id} would run without the "
        f"alert's data; job {job.id} was cancelled)"
    )
    assert job.status == "canceled"


async def test_429_on_launch_is_retryable_with_retry_after_then_succeeds(
    controller: Controller, make_executor: Make
) -> None:
    executor = make_executor()
    controller.script("launch", 429, {"Retry-After": "7"})

    error = await fail(executor, request(job_template_id=7))

    assert error.retryable
    assert error.retry_after == 7
    assert error.summary == ("launching AWX job template 7: 429 Too Many Requests (Retry-After 7s)")
    assert controller.jobs == {}
    result = await executor.run(request(job_template_id=7))  # the core's next attempt
    assert "successful" in result.summary


async def test_5xx_and_connection_errors_before_launch_are_retryable(
    controller: Controller, make_executor: Make
) -> None:
    controller.script("lookup", 503)
    error = await fail(make_executor(), request(job_template="restart-db"))
    assert error.retryable
    assert error.summary == ("looking up AWX job template 'restart-db': 503 Service Unavailable")

    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = await fail(make_executor(url=f"http://127.0.0.1:{port}"), request(job_template_id=7))
    assert error.retryable
    assert error.summary.startswith("launching AWX job template 7: Cannot connect")


async def test_429_while_following_waits_and_does_not_launch_again(
    controller: Controller, make_executor: Make
) -> None:
    controller.script("job", 429, {"Retry-After": "1"})
    controller.script("job", 502)
    started = time.monotonic()

    result = await make_executor().run(request(job_template_id=7))

    assert time.monotonic() - started >= 1  # Retry-After honoured
    assert "successful" in result.summary
    assert len(controller.launches) == 1
    [job] = controller.jobs.values()
    assert job.polls == 3  # two scripted answers did not reach the job


async def test_polls_back_off_exponentially(controller: Controller, make_executor: Make) -> None:
    controller.job_script = ["pending", "waiting", *["running"] * 4, "successful"]
    executor = make_executor(poll_interval="10ms", max_poll_interval="50ms")
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(round(seconds, 3))

    executor._sleep = sleep

    await executor.run(request(job_template_id=7))

    [job] = controller.jobs.values()
    assert job.polls == 7
    assert waits == [0.01, 0.02, 0.04, 0.05, 0.05, 0.05]


async def test_timeout_cancels_the_job_on_the_controller(
    controller: Controller, make_executor: Make
) -> None:
    controller.job_script = ["pending", "running"]  # never ends by itself

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await make_executor().run(request(job_template_id=7))

    [job] = controller.jobs.values()
    assert job.polls >= 2
    assert controller.cancels() == [f"/api/v2/jobs/{job.id}/cancel/"]
    assert job.status == "canceled"


async def test_timeout_during_the_launch_still_cancels_the_job(
    controller: Controller, make_executor: Make
) -> None:
    controller.launch_delay = 0.3
    controller.job_script = ["running"]
    executor = make_executor()

    task = asyncio.create_task(executor.run(request(job_template_id=7)))
    await asyncio.wait_for(controller.launch_started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    [job] = controller.jobs.values()
    assert controller.cancels() == [f"/api/v2/jobs/{job.id}/cancel/"]
    assert job.status == "canceled"


async def test_output_keeps_the_tail_within_the_cap(
    controller: Controller, make_executor: Make
) -> None:
    noise = "".join(f"TASK [step {i}] {'*' * 60}\nok: [db-1]\n" for i in range(4000))
    controller.job_stdout = noise + RECAP
    assert len(controller.job_stdout) > 4 * MAX_OUTPUT_BYTES

    result = await make_executor().run(request(job_template_id=7))

    assert len(result.output.encode()) <= MAX_OUTPUT_BYTES
    assert result.output.endswith(RECAP)
    first, second = result.output.splitlines()[:2]
    assert first.endswith(": successful")
    assert second.startswith("… (first ")
    assert second.endswith(" KiB cut)")
    assert result.summary.endswith("; db-1 ok=2 changed=1")


async def test_unavailable_stdout_does_not_fail_a_successful_job(
    controller: Controller, make_executor: Make
) -> None:
    controller.script("stdout", 500)
    result = await make_executor().run(request(job_template_id=7))
    assert "successful" in result.summary
    assert "(stdout unavailable: 500" in result.output


async def test_losing_access_while_following_fails_without_retry(
    controller: Controller, make_executor: Make
) -> None:
    controller.script("job", 404)
    error = await fail(make_executor(), request(job_template_id=7))
    assert not error.retryable
    assert "which was launched and may still run: 404" in error.summary


async def test_basic_auth(controller: Controller, make_executor: Make, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(BASIC[1] + "\n")
    executor = make_executor(username=BASIC[0], password_file=str(secret))
    result = await executor.run(request(job_template_id=7))
    assert "successful" in result.summary


async def test_dry_run_sends_nothing(controller: Controller, make_executor: Make) -> None:
    result = await make_executor().run(
        request(dry_run=True, job_template="restart-db", extra_vars={"s": HOSTILE}, limit="db-1")
    )
    assert result.summary == (
        "dry run: would launch AWX job template 'restart-db' with extra_vars "
        f"{json.dumps({'s': HOSTILE})} and limit 'db-1'"
    )
    assert controller.requests == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"job_template_id": 7, "extra_vars": {"ansible_ssh_common_args": "x"}}, "ansible_*"),
        ({"job_template_id": 7, "limit": "@/etc/hosts"}, "not a plain list of host"),
        ({"job_template_id": 7, "limit": "db 1"}, "not a plain list of host"),
        ({"job_template_id": 7, "limit": "*"}, "patterns could widen the run"),
        ({"job_template_id": 7, "limit": "db-1,!db-2"}, "not a plain list of host"),
        ({"job_template_id": 7, "limit": "web:&prod"}, "not a plain list of host"),
        ({"job_template_id": 7, "limit": ""}, "limit rendered empty"),
        ({"extra_vars": {}}, "give job_template or job_template_id"),
        ({"job_template_id": "x"}, "invalid awx action parameters"),
    ],
)
async def test_bad_rendered_params_are_refused_before_sending(
    controller: Controller, make_executor: Make, params: dict[str, Any], message: str
) -> None:
    error = await fail(make_executor(), request(**params))
    assert message in error.summary
    assert not error.retryable
    assert controller.requests == []


async def test_redirects_are_not_followed(controller: Controller, make_executor: Make) -> None:
    controller.script("launch", 301, {"Location": "https://elsewhere.example/"})
    error = await fail(make_executor(), request(job_template_id=7))
    assert "redirected to https://elsewhere.example/" in error.summary
    assert not error.retryable


async def test_unconfigured_executor_fails_clearly() -> None:
    context = ExecutorContext(playbooks_dir=Path(), data_dir=Path(), settings=None)
    executor = PLUGIN.create(context)
    assert isinstance(executor, AwxExecutor)
    with pytest.raises(AwxFailed, match=r"executors.awx.url is not set"):
        await executor.run(request(job_template_id=7))
    assert executor.check({"type": "awx", "job_template_id": 7}) == [
        "awx: executors.awx.url is not set: configure the controller (url and a token) in the "
        "service config"
    ]
    await executor.close()


async def test_missing_secret_fails_at_create(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_AWX_TOKEN", raising=False)
    settings = AwxSettings.model_validate(
        {"url": "https://controller.example", "token_env": "NO_SUCH_AWX_TOKEN"}
    )
    context = ExecutorContext(playbooks_dir=Path(), data_dir=Path(), settings=settings)
    with pytest.raises(PluginError, match="NO_SUCH_AWX_TOKEN is not set"):
        PLUGIN.create(context)


def test_recap_parses_the_last_play_recap() -> None:
    text = "PLAY RECAP ***\nold : ok=1 changed=0 unreachable=0 failed=0\n" + FAILED_RECAP
    assert recap(text)["db-1"]["failed"] == 1
    assert "old" not in recap(text)
    assert recap("no recap here") == {}
