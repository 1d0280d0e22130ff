"""remediator.plugins: the pieces every plugin shares."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from remediator.escalation.runner import _retry_delay
from remediator.plugins import PluginError, read_secret, retry_after_seconds


def test_a_secret_comes_from_exactly_one_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "key"
    secret_file.write_text("from-file\n")
    monkeypatch.setenv("ROUTING_KEY", "from-env")
    assert read_secret("routing_key", inline="inline") == "inline"
    assert read_secret("routing_key", env="ROUTING_KEY") == "from-env"
    assert read_secret("routing_key", file=secret_file) == "from-file"
    assert read_secret("routing_key") is None
    with pytest.raises(PluginError, match="not routing_key, routing_key_env"):
        read_secret("routing_key", inline="a", env="ROUTING_KEY")


def test_a_missing_source_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET", raising=False)
    with pytest.raises(PluginError, match="routing_key_env: environment variable NOT_SET"):
        read_secret("routing_key", env="NOT_SET")
    with pytest.raises(PluginError, match="routing_key_file: cannot read"):
        read_secret("routing_key", file=tmp_path / "absent")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("12", 12.0),
        (" 0 ", 0.0),
        ("soon", None),
        ("-3", None),  # not delay-seconds (digits only)
        ("1e9", None),
        ("inf", None),
        ("Mon, 01 Jan 2024 00:01:30 GMT", 90.0),
        ("Sun, 31 Dec 2023 23:00:00 GMT", 0.0),  # already past
    ],
)
def test_retry_after_is_delay_seconds_or_an_http_date(
    header: str | None, seconds: float | None
) -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert retry_after_seconds(header, now) == seconds


def test_a_retry_after_from_the_receiver_is_honoured_up_to_an_hour() -> None:
    assert _retry_delay(1, 120) == 120
    assert _retry_delay(1, 10**9) == 3600
