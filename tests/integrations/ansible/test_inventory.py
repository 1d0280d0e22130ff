"""Hosts from labels, the inventory document and the !unsafe vars file, without Ansible."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from remediator_integrations.ansible.inventory import (
    check_limit,
    host_from_instance,
    inventory_document,
    parse_hosts,
    unsafe_vars_document,
)

from remediator.plugins import ActionFailed


class _TagAwareLoader(yaml.SafeLoader):
    """Reads `!unsafe "…"` back as a tuple, so tests see the tag and the text."""


def _construct_unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[str, str]:
    assert isinstance(node, yaml.ScalarNode)
    return ("unsafe", loader.construct_scalar(node))


_TagAwareLoader.add_constructor("!unsafe", _construct_unsafe)


def _load(document: str) -> Any:
    return yaml.load(document, Loader=_TagAwareLoader)  # noqa: S506 (a SafeLoader subclass)


@pytest.mark.parametrize(
    ("instance", "host"),
    [
        ("db-1:9100", "db-1"),
        ("db-1.example.com:9100", "db-1.example.com"),
        ("10.0.0.5:9100", "10.0.0.5"),
        ("[::1]:9100", "::1"),
        ("[2001:db8::7]:9100", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("2001:db8::7", "2001:db8::7"),
        ("db-1", "db-1"),
        ("https://shop.example.com:443/health", "shop.example.com"),
    ],
)
def test_host_from_instance(instance: str, host: str) -> None:
    assert host_from_instance(instance) == host
    assert parse_hosts(None, {"instance": instance}) == [host]


def test_hosts_field_is_split_trimmed_and_deduplicated() -> None:
    assert parse_hosts(" db-1, db-2 ,,db-1", {"instance": "other:9100"}) == ["db-1", "db-2"]


@pytest.mark.parametrize(
    "host",
    [
        "db-1 ansible_host=evil",
        "db-1:22",
        "db[1:3]",
        "@/etc/passwd",
        "~.*",
        "db-1\n[all:vars]",
        "-db",
        "fe80::1%eth0",
        "{{ lookup('pipe','id') }}",
        "",
    ],
)
def test_hosts_that_are_not_plain_names_are_refused(host: str) -> None:
    with pytest.raises(ActionFailed) as caught:
        parse_hosts(None, {"instance": f"[{host}]:9100" if ":" in host else host})

    assert not caught.value.retryable


def test_missing_instance_label_says_to_set_hosts() -> None:
    with pytest.raises(ActionFailed, match=r"no `instance` label.*set the action's `hosts`"):
        parse_hosts(None, {"alertname": "DiskFull"})


@pytest.mark.parametrize("limit", ["db-1", "web*:&prod:!db-3", "db[1:3],10.0.0.5"])
def test_plain_limits_pass(limit: str) -> None:
    assert check_limit(limit) == limit


@pytest.mark.parametrize("limit", ["@/tmp/hosts", "db 1", "~.*", ""])
def test_limits_that_read_files_or_regexes_are_refused(limit: str) -> None:
    with pytest.raises(ActionFailed, match="not a plain host pattern"):
        check_limit(limit)


def test_inventory_holds_exactly_the_hosts_as_data() -> None:
    document = inventory_document(["db-1", "::1"])

    assert json.loads(document) == {"all": {"hosts": {"db-1": {}, "::1": {}}}}


def test_every_value_is_tagged_unsafe() -> None:
    document = unsafe_vars_document({"path": "/var/log", "cmd": "{{ lookup('pipe','id') }}"})

    assert _load(document) == {
        "path": ("unsafe", "/var/log"),
        "cmd": ("unsafe", "{{ lookup('pipe','id') }}"),
    }


@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), st.text()))
def test_any_text_round_trips_unsafe(variables: dict[str, str]) -> None:
    loaded = _load(unsafe_vars_document(variables))

    assert loaded == {name: ("unsafe", value) for name, value in variables.items()}
