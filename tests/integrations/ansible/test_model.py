"""The action and settings models, and the plugin as the core sees it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from remediator_integrations.ansible import PLUGIN, AnsibleAction, AnsibleSettings

from remediator.plugins import ActionSpec


def test_plugin_declares_the_ansible_type() -> None:
    assert PLUGIN.type == "ansible"
    assert PLUGIN.action_model is AnsibleAction
    assert PLUGIN.settings_model is AnsibleSettings
    assert issubclass(AnsibleAction, ActionSpec)
    assert PLUGIN.description


def test_minimal_action_has_documented_defaults() -> None:
    action = AnsibleAction.model_validate({"type": "ansible", "playbook": "disk-cleanup.yml"})

    assert action.hosts is None
    assert action.extravars == {}
    assert action.limit is None
    assert action.tags == []
    assert action.skip_tags == []
    assert action.check_mode is False
    assert action.timeout == timedelta(minutes=5)


def test_full_action() -> None:
    raw = {
        "type": "ansible",
        "playbook": "linux/disk-cleanup.yml",
        "hosts": "{{ labels.node }}",
        "extravars": {"mountpoint": "{{ labels.mountpoint }}"},
        "limit": "{{ labels.node }}",
        "tags": ["cleanup"],
        "skip_tags": ["reboot"],
        "check_mode": True,
        "timeout": "10m",
        "retries": 2,
    }

    action = AnsibleAction.model_validate(raw)

    assert action.extravars == {"mountpoint": "{{ labels.mountpoint }}"}
    assert action.timeout == timedelta(minutes=10)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"playbook": "/etc/ansible/site.yml"}, "must be a path relative"),
        ({"playbook": "../site.yml"}, "must not contain '..'"),
        ({"playbook": "~root/site.yml"}, "must be a path relative"),
        ({"playbook": " "}, "playbook is empty"),
        ({"hosts": "{{ labels.node"}, "invalid template"),
        ({"extravars": {"ansible_become_exe": "x"}}, "ansible_* variables are not allowed"),
        ({"extravars": {"not-a-name": "x"}}, "must be a variable name"),
        ({"tags": ["a,b"]}, "String should match pattern"),
        ({"unknown": 1}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_actions_are_rejected(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("*", r"\*")):
        AnsibleAction.model_validate({"type": "ansible", "playbook": "site.yml", **change})


def test_schema_describes_every_field() -> None:
    properties = AnsibleAction.model_json_schema()["properties"]

    for name in ("playbook", "hosts", "extravars", "limit", "tags", "skip_tags", "check_mode"):
        assert properties[name].get("description"), name
    assert "`instance` label" in properties["hosts"]["description"]


def test_settings_defaults_and_durations() -> None:
    defaults = AnsibleSettings()
    assert defaults.keep_run_files == timedelta(days=1)
    assert defaults.connection is None

    settings = AnsibleSettings.model_validate({"keep_run_files": "6h", "connection": "local"})
    assert settings.keep_run_files == timedelta(hours=6)


def test_settings_reject_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        AnsibleSettings.model_validate({"remote_usr": "deploy"})
