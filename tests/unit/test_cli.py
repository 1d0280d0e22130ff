"""The `remediator` command: check, schema, db upgrade."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from remediator.cli import main
from remediator.store.migrate import head_revision
from tests.conftest import REPO


def test_check_passes_on_the_shipped_rules(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without a config, playbooks_dir is ./playbooks: the shipped rules run shipped playbooks.
    monkeypatch.chdir(REPO)
    assert main(["check", str(REPO / "rules")]) == 0
    assert capsys.readouterr().out.startswith("SUCCESS: ")


def test_check_reports_file_line_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "bad.yml"
    rules.write_text("rules:\n  - name: x\n    match: ['alertname=~\"[\"']\n    actoins: []\n")
    assert main(["check", str(rules)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert any(_at(line, rules, 3) for line in err), err
    assert any(_at(line, rules, 4) and "actoins" in line for line in err), err
    assert err[-1] == "FAILED: 2 problem(s)"


def test_check_reports_a_playbook_that_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "present.yml").write_text("- hosts: all\n  tasks: []\n")
    (tmp_path / "rules.yml").write_text(
        "rules:\n"
        "  - name: disk\n"
        "    match: ['alertname=\"Disk\"']\n"
        "    actions:\n"
        "      - {type: ansible, playbook: present.yml}\n"
        "      - {type: ansible, playbook: missing.yml}\n"
    )
    config = tmp_path / "remediator.yml"
    config.write_text("rules: [rules.yml]\nplaybooks_dir: playbooks\n")
    assert main(["check", "--config", str(config)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err
    assert err[0].endswith("missing.yml") or "missing.yml" in err[0]
    assert "rules.yml:2: rule disk: actions[1] (ansible): " in err[0]


def test_check_validates_the_config_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "remediator.yml"
    config.write_text(f"rules: [{REPO / 'rules'}]\nlisten: nowhere\n")
    assert main(["check", "--config", str(config)]) == 1
    assert f"{config}:2: " in capsys.readouterr().err


def test_schema_is_json_schema_for_rule_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "rules" in schema["properties"]
    assert main(["schema", "config"]) == 0
    assert "database_url" in json.loads(capsys.readouterr().out)["properties"]


def test_db_upgrade_creates_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "fresh.db"
    monkeypatch.setenv("REMEDIATOR_DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out.strip() == f"database at schema revision {head_revision()}"
    tables = set(inspect(create_engine(f"sqlite:///{db}")).get_table_names())
    assert {"alert_events", "incidents", "incident_alerts", "timeline"} <= tables


def _at(line: str, path: Path, number: int) -> bool:
    """Whether `line` is a problem at `path:number` (printed relative or absolute)."""
    shown, sep, _ = line.partition(f":{number}: ")
    return bool(sep) and Path(shown).resolve() == path.resolve()
