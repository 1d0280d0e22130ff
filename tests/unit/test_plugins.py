"""remediator.plugins: the pieces every plugin shares."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediator.plugins import PluginError, read_secret


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
