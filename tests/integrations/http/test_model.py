"""The http action's rule model, its settings and `check`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from remediator_integrations.http import PLUGIN, HttpAction, HttpExecutor, HttpSettings

from remediator.plugins import ExecutorContext, validate_settings
from remediator.rules.templating import Template

README = Path(__file__).resolve().parents[3] / "integrations" / "http" / "README.md"


def action(**fields: Any) -> HttpAction:
    return HttpAction.model_validate({"type": "http", "url": "http://svc/x", **fields})


def yaml_blocks(text: str) -> list[str]:
    parts = text.split("```yaml\n")[1:]
    return [part.split("```", 1)[0] for part in parts]


def test_plugin_declares_the_http_type() -> None:
    assert PLUGIN.type == "http"
    assert PLUGIN.action_model is HttpAction
    assert PLUGIN.settings_model is HttpSettings
    context = ExecutorContext(playbooks_dir=Path(), data_dir=Path(), settings=None)
    assert isinstance(PLUGIN.create(context), HttpExecutor)


def test_readme_examples_validate() -> None:
    rules, settings = yaml_blocks(README.read_text())[:2]
    for raw in yaml.safe_load(rules):
        HttpAction.model_validate(raw)
    validate_settings(PLUGIN, yaml.safe_load(settings)["executors"]["http"])


def test_defaults() -> None:
    spec = action()
    assert (spec.method, spec.headers, spec.body) == ("POST", {}, None)
    assert spec.expect_status == [200, 201, 202, 204]
    assert action(method="patch").method == "PATCH"


def test_json_body_leaves_become_templates_and_dump_as_written() -> None:
    body = {"service": "{{ labels.service }}", "list": ["a", 1, 2.5, True, None], "x": {}}
    spec = action(json=body)

    assert spec.body["service"] == Template("{{ labels.service }}")
    assert spec.body["list"][0] == Template("a")
    assert spec.model_dump(mode="json", by_alias=True)["json"] == body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"a": ["{{ x"]}, "json.a[0]: invalid template"),
        ({"a": float("inf")}, "json.a: JSON has no NaN or infinity"),
        ({1: "a"}, "json: mapping key 1 must be a string"),
        ({"when": Path()}, "json.when: a PosixPath is not JSON"),
    ],
)
def test_json_body_errors_name_the_place(body: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        action(json=body)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Authorization": "Bearer x"}, "configure bearer_token or basic_auth"),
        ({"Host": "evil"}, "set by remediator"),
        ({"Content-Length": "1"}, "set by remediator"),
        ({"X Bad": "1"}, "not a valid HTTP field name"),
    ],
)
def test_rule_headers_are_checked(headers: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        action(headers=headers)


@pytest.mark.parametrize(
    "fields",
    [{"method": "TRACE"}, {"expect_status": []}, {"expect_status": [99]}, {"body": {}}],
)
def test_invalid_actions(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        action(**fields)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"bearer_token": {"env": "T"}}, "need allowed_hosts"),
        (
            {
                "allowed_hosts": ["svc"],
                "bearer_token": {"env": "T"},
                "basic_auth": {"username": "u", "password": {"env": "P"}},
            },
            "not both",
        ),
        ({"allowed_hosts": ["svc"], "bearer_token": {}}, "exactly one of env or file"),
        ({"bearer_token": {"value": "inline"}, "allowed_hosts": ["svc"]}, "Extra inputs"),
        ({"allowed_hosts": ["svc:8080"]}, "is not a host name"),
        ({"allowed_hosts": ["http://svc"]}, "is not a host name"),
        ({"verify_tls": False, "ca_file": "/ca.pem"}, "no effect"),
        ({"timeout": "0"}, "positive"),
    ],
)
def test_invalid_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HttpSettings.model_validate(settings)


def test_allowed_hosts_are_normalised() -> None:
    settings = HttpSettings.model_validate({"allowed_hosts": ["Svc.Internal.", "[::1]"]})
    assert settings.allowed_hosts == ["svc.internal", "::1"]


def check(url: Any, **settings: Any) -> list[str]:
    return HttpExecutor(HttpSettings.model_validate(settings)).check({"type": "http", "url": url})


def test_check_accepts_good_urls() -> None:
    assert check("http://svc/api/{{ labels.service }}") == []
    assert check("https://svc/api/{{ labels.service }}", allowed_hosts=["svc"]) == []
    assert check(Template("http://svc/{{ labels.x }}")) == []
    assert check("{{ annotations.hook }}", allowed_hosts=["svc"]) == []


@pytest.mark.parametrize(
    ("url", "settings", "problem"),
    [
        (None, {}, "`url` is missing"),
        ("  ", {}, "`url` is missing"),
        ("ftp://svc/{{ labels.x }}", {}, "only http:// and https://"),
        ("gopher://{{ labels.x }}", {}, "must start with http:// or https://"),
        ("svc/restart", {}, "only http:// and https://"),
        ("http://other/{{ labels.x }}", {"allowed_hosts": ["svc"]}, "not in executors.http"),
        ("http://{{ labels.host }}/x", {}, "comes from alert data"),
        ("{{ annotations.hook }}", {}, "comes from alert data"),
    ],
)
def test_check_reports_static_problems(url: Any, settings: dict[str, Any], problem: str) -> None:
    [found] = check(url, **settings)
    assert problem in found
