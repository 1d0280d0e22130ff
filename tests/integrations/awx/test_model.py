"""The awx action's rule model, its settings and `check`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from remediator_integrations.awx import PLUGIN, AwxAction, AwxExecutor, AwxSettings

from remediator.plugins import ExecutorContext, PluginError, validate_settings
from remediator.rules.compiled import compile_action
from remediator.rules.templating import Template

README = Path(__file__).resolve().parents[3] / "integrations" / "awx" / "README.md"
URL = "https://controller.example.com"


def action(**fields: Any) -> AwxAction:
    return AwxAction.model_validate({"type": "awx", **fields})


def yaml_blocks(text: str) -> list[str]:
    parts = text.split("```yaml\n")[1:]
    return [part.split("```", 1)[0] for part in parts]


def test_plugin_declares_the_awx_type() -> None:
    assert PLUGIN.type == "awx"
    assert PLUGIN.action_model is AwxAction
    assert PLUGIN.settings_model is AwxSettings
    context = ExecutorContext(playbooks_dir=Path(), data_dir=Path(), settings=None)
    assert isinstance(PLUGIN.create(context), AwxExecutor)


def test_readme_examples_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    rules, settings = yaml_blocks(README.read_text())[:2]
    for raw in yaml.safe_load(rules):
        AwxAction.model_validate(raw)
    section = yaml.safe_load(settings)["executors"]["awx"]
    section.pop("ca_file")  # the file does not exist here
    monkeypatch.setenv("REMEDIATOR_AWX_TOKEN", "t")
    validated = validate_settings(PLUGIN, section)
    assert isinstance(validated, AwxSettings)
    assert validated.url == URL


def test_defaults_and_templates() -> None:
    extra = {"extra_vars": {"s": "{{ labels.service }}"}}
    spec = action(job_template="restart-db", **extra)
    assert (spec.job_template_id, spec.limit, spec.timeout.total_seconds()) == (None, None, 300)
    compiled = compile_action(action(job_template_id=3, limit="{{ labels.host }}", **extra))
    assert compiled.params["extra_vars"]["s"] == Template("{{ labels.service }}")
    assert compiled.params["limit"] == Template("{{ labels.host }}")
    assert compiled.params["job_template_id"] == 3


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one of job_template"),
        ({"job_template": "a", "job_template_id": 1}, "exactly one of job_template"),
        ({"job_template_id": 0}, "greater than or equal to 1"),
        ({"job_template": ""}, "at least 1 character"),
        ({"job_template": "a", "extra_vars": {"ansible_become_exe": "x"}}, "ansible_"),
        ({"job_template": "a", "extra_vars": {"not a name": "x"}}, "must be a variable name"),
        ({"job_template": "a", "extra_vars": {"a": "{{ x"}}, "template"),
        ({"job_template": "a", "inventory": 3}, "Extra inputs"),
    ],
)
def test_invalid_actions(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        action(**fields)


def test_settings_normalise_the_url() -> None:
    settings = AwxSettings.model_validate({"url": URL + "/", "token": "t"})
    assert settings.url == URL
    assert settings.api_path == "/api/v2/"
    assert settings.poll_interval.total_seconds() == 2
    assert settings.max_poll_interval.total_seconds() == 30
    assert settings.verify_tls
    assert AwxSettings().url is None  # unconfigured: the service still starts


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": URL}, "needs credentials"),
        ({"token": "t"}, "url is not"),
        ({"url": "controller.example.com", "token": "t"}, "not an http"),
        ({"url": "https://u:p@controller.example.com", "token": "t"}, "user:password"),
        ({"url": URL + "/?x=1", "token": "t"}, "query or fragment"),
        ({"url": URL, "token": "t", "token_env": "T"}, "token one way only"),
        ({"url": URL, "token": "t", "username": "u", "password": "p"}, "not both"),
        ({"url": URL, "username": "u"}, "needs both username and a password"),
        ({"url": URL, "password_env": "P"}, "needs both username and a password"),
        ({"url": URL, "username": "u:x", "password": "p"}, "String should match"),
        ({"url": URL, "token": "t", "api_path": "api/v2"}, "api_path must look like"),
        ({"url": URL, "token": "t", "api_path": "/api/../v2/"}, "api_path must look like"),
        ({"url": URL, "token": "t", "poll_interval": "0s"}, "poll_interval must be positive"),
        ({"url": URL, "token": "t", "poll_interval": "1m"}, "max_poll_interval must not"),
        ({"url": URL, "token": "t", "verify_tls": False, "ca_file": "/ca"}, "no effect"),
        ({"url": URL, "token": "t", "tokens": "x"}, "Extra inputs"),
    ],
)
def test_invalid_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AwxSettings.model_validate(settings)


def test_token_file_is_read_when_used(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("one\n")
    settings = AwxSettings.model_validate({"url": URL, "token_file": str(secret)})
    assert settings.token_value() == "one"
    secret.write_text("two\n")
    assert settings.token_value() == "two"
    secret.unlink()
    context = ExecutorContext(playbooks_dir=Path(), data_dir=Path(), settings=settings)
    with pytest.raises(PluginError, match="token_file: cannot read"):
        PLUGIN.create(context)


def check(**params: Any) -> list[str]:
    settings = AwxSettings.model_validate({"url": URL, "token": "t"})
    return AwxExecutor(settings).check({"type": "awx", "job_template": "x", **params})


def test_check_reports_static_limit_problems() -> None:
    assert check() == []
    assert check(limit="{{ labels.host }}") == []
    assert check(limit=Template("db-1,db-2")) == []
    [problem] = check(limit="all:!db-1")
    assert problem.startswith("awx: limit 'all:!db-1' is not a plain list")
