"""Loading the service config: defaults, files, environment overrides, clear errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from remediator.config import Role, load_config
from remediator.errors import ConfigError
from remediator.incidents.priority import Priority


def test_defaults_need_no_file() -> None:
    config = load_config(None, environ={})
    assert config.listen == "0.0.0.0:9095"
    assert config.database_url == "sqlite+aiosqlite:///var/remediator.db"
    assert config.intake.max_body_bytes == 4 * 1024 * 1024
    assert config.priorities.sla[Priority.P1].acknowledge == timedelta(minutes=15)
    assert config.priorities.sla[Priority.P4].resolve == timedelta(days=5)
    assert config.priorities.severity_map["critical"] is Priority.P1


def test_unknown_key_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "remediator.yml"
    path.write_text("listen: 127.0.0.1:9095\ndatabse_url: sqlite+aiosqlite:///x.db\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    (problem,) = caught.value.problems
    assert problem.line == 2
    assert "databse_url" in problem.message
    assert str(problem).startswith(f"{path}:2: ")


def test_nested_errors_point_at_the_offending_line(tmp_path: Path) -> None:
    path = tmp_path / "remediator.yml"
    path.write_text("priorities:\n  sla:\n    P1:\n      acknowledge: soon\n      resolve: 4h\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.problems[0].line == 4
    assert "Prometheus duration" in caught.value.problems[0].message


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "remediator.yml"
    path.write_text("listen: 127.0.0.1:1\nrules: [a.yml]\n")
    config = load_config(
        path,
        environ={
            "REMEDIATOR_LISTEN": "127.0.0.1:9999",
            "REMEDIATOR_INTAKE__MAX_BODY_BYTES": "1024",
            "REMEDIATOR_RULES": "[x.yml, y/]",
            "REMEDIATOR_CONFIG": str(path),
        },
    )
    assert config.host_port == ("127.0.0.1", 9999)
    assert config.intake.max_body_bytes == 1024
    assert config.rules == ["x.yml", "y/"]
    assert config.base_dir == tmp_path


def test_unknown_environment_setting_is_an_error() -> None:
    with pytest.raises(ConfigError, match="REMEDIATOR_LISTN"):
        load_config(None, environ={"REMEDIATOR_LISTN": "x"})


def test_tokens_from_inline_file_and_env(tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("from-file\n")
    path = tmp_path / "remediator.yml"
    path.write_text(
        "auth:\n  tokens:\n"
        "    - {name: a, token: inline, role: admin}\n"
        f"    - {{name: b, token_file: {secret_file}, role: operator}}\n"
        "    - {name: c, token_env: TOKEN_C}\n"
    )
    config = load_config(path, environ={})
    a, b, c = config.auth.tokens
    assert a.secret().reveal() == "inline"
    assert b.secret().reveal() == "from-file"
    assert c.role is Role.viewer
    with pytest.raises(ValueError, match="TOKEN_C is not set"):
        c.secret().reveal()


def test_a_token_needs_exactly_one_source(tmp_path: Path) -> None:
    path = tmp_path / "remediator.yml"
    path.write_text("auth:\n  tokens:\n    - {name: a, role: admin}\n")
    with pytest.raises(ConfigError, match="exactly one of token"):
        load_config(path, environ={})


def test_role_order() -> None:
    assert Role.admin.allows(Role.operator)
    assert Role.operator.allows(Role.viewer)
    assert not Role.viewer.allows(Role.operator)
