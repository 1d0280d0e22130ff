"""The PromQL verifier against a server with the Prometheus query API's contract."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from remediator_integrations.prometheus import PrometheusSettings, PromQLVerifier

from remediator.plugins import CheckFailed
from tests.prometheus_api import (
    BAD_QUERY,
    HEALTHY,
    TIMEOUT,
    FakePrometheus,
    error,
    series,
)


def verifier(url: str, **settings: object) -> PromQLVerifier:
    return PromQLVerifier(PrometheusSettings.model_validate({"url": url, **settings}))


async def test_no_series_is_healthy_and_the_query_is_sent_as_is(
    prometheus_api: FakePrometheus,
) -> None:
    check = verifier(prometheus_api.url)
    query = 'node_filesystem_avail_bytes{mountpoint="/var\\"x"} < 1e9'
    result = await check.check(query)
    await check.close()
    assert result.healthy
    assert result.summary == "returned no series"
    assert prometheus_api.queries == [query]


async def test_series_are_unhealthy_and_named(prometheus_api: FakePrometheus) -> None:
    prometheus_api.answer(series(5, instance="db-1:9100"))
    check = verifier(prometheus_api.url)
    result = await check.check("up == 0")
    await check.close()
    assert not result.healthy
    assert result.summary.startswith('still returns 5 series: {instance="db-1:9100", n="0"} = 1')
    assert result.summary.endswith("and 2 more")


async def test_a_range_query_counts_its_series(prometheus_api: FakePrometheus) -> None:
    matrix = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {"job": "x"}, "values": [[1, "0"], [2, "3"]]}],
        },
    }
    prometheus_api.answer(matrix)
    check = verifier(prometheus_api.url)
    result = await check.check("up[1m]")
    await check.close()
    assert (result.healthy, result.summary) == (False, 'still returns 1 series: {job="x"} = 3')


@pytest.mark.parametrize(
    ("answer", "permanent", "says"),
    [
        (BAD_QUERY, True, "Prometheus answered 400 (bad_data): invalid parameter"),
        (error(422, "execution", "query processing would load too many samples"), True, "422"),
        (TIMEOUT, False, "Prometheus answered 503 (timeout)"),
        (error(429, "unavailable", "too many requests"), False, "429"),
        ((502, b"<html>Bad Gateway</html>"), False, "not a Prometheus API answer"),
        (
            {"status": "success", "data": {"resultType": "scalar", "result": [1, "1"]}},
            True,
            "returns a scalar, not series",
        ),
    ],
)
async def test_failures_say_whether_waiting_can_help(
    prometheus_api: FakePrometheus,
    answer: tuple[int, object] | dict[str, object],
    permanent: bool,
    says: str,
) -> None:
    prometheus_api.answer(answer)
    check = verifier(prometheus_api.url)
    with pytest.raises(CheckFailed) as failed:
        await check.check("up == 0")
    await check.close()
    assert failed.value.permanent is permanent
    assert says in failed.value.summary


async def test_an_unreachable_server_is_a_failure_to_try_again() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    check = verifier(f"http://127.0.0.1:{port}")
    with pytest.raises(CheckFailed) as failed:
        await check.check("up == 0")
    await check.close()
    assert not failed.value.permanent
    assert "cannot reach Prometheus" in failed.value.summary


async def test_credentials_and_headers_are_sent(
    prometheus_api: FakePrometheus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    monkeypatch.setenv("PROM_TOKEN", "from-env")
    for settings, expected in [
        ({"bearer_token_file": str(token_file)}, "Bearer from-file"),
        ({"bearer_token_env": "PROM_TOKEN"}, "Bearer from-env"),
    ]:
        check = verifier(prometheus_api.url, headers={"X-Scope-OrgID": "team-a"}, **settings)
        await check.check("up == 0")
        await check.close()
        assert prometheus_api.headers[-1]["Authorization"] == expected
        assert prometheus_api.headers[-1]["X-Scope-OrgID"] == "team-a"
    monkeypatch.delenv("PROM_TOKEN")
    check = verifier(prometheus_api.url, bearer_token_env="PROM_TOKEN")
    with pytest.raises(CheckFailed, match="environment variable PROM_TOKEN is not set"):
        await check.check("up == 0")
    await check.close()


def test_settings_refuse_two_token_sources_and_bad_urls() -> None:
    with pytest.raises(ValueError, match="at most one of bearer_token"):
        PrometheusSettings.model_validate(
            {"url": "http://p:9090", "bearer_token": "a", "bearer_token_env": "B"}
        )
    with pytest.raises(ValueError, match="url"):
        PrometheusSettings.model_validate({"url": "prometheus:9090/x y"})


async def test_healthy_answers_reuse_one_connection_pool(prometheus_api: FakePrometheus) -> None:
    prometheus_api.answer(HEALTHY)
    check = verifier(prometheus_api.url + "/")  # a trailing slash is fine
    for _ in range(3):
        assert (await check.check("up == 0")).healthy
    await check.close()
    assert len(prometheus_api.queries) == 3
