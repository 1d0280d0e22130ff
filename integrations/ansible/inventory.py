"""The run's inputs as data files: hosts from labels, the inventory, and untrusted variables.

Everything here may come from an alert's labels, so nothing is ever spliced into Ansible
syntax: host names are checked against a conservative pattern and written as JSON data, and
variable values are tagged `!unsafe` so that Ansible never templates them.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from remediator.plugins import ActionFailed

__all__ = [
    "host_from_instance",
    "inventory_document",
    "parse_hosts",
    "unsafe_vars_document",
]

# DNS names and IPv4 addresses. No brackets, colons, commas, spaces, '@' or '~': in Ansible
# host patterns those mean ranges, ports, lists, files and regexes.
_HOSTNAME: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?")
# A --limit is a host pattern; '@file' would make Ansible read hosts from a file.
_LIMIT: Final = re.compile(r"[A-Za-z0-9_.:,!&*\[\]-]{1,1000}")


def _is_ipv6(text: str) -> bool:
    if "%" in text:  # zone ids ("fe80::1%eth0") are not valid inventory names
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def check_host(host: str) -> str:
    """`host` unchanged if it is a plain host name or IP address; else ActionFailed."""
    if _HOSTNAME.fullmatch(host) or _is_ipv6(host):
        return host
    raise ActionFailed(
        f"host {host[:100]!r} is not a plain host name or IP address; "
        "set the action's `hosts` to a valid name"
    )


def check_limit(limit: str) -> str:
    """`limit` unchanged if it is a plain Ansible host pattern; else ActionFailed."""
    if _LIMIT.fullmatch(limit):
        return limit
    raise ActionFailed(
        f"limit {limit[:100]!r} is not a plain host pattern "
        "(letters, digits and _ . : , ! & * [ ] -)"
    )


def host_from_instance(instance: str) -> str:
    """The host part of a Prometheus `instance` label: `db-1:9100` → `db-1`.

    Handles `[::1]:9100`, a bare IPv6 address and URLs such as blackbox targets.
    """
    if "://" in instance:
        return urlsplit(instance).hostname or ""
    if instance.startswith("["):
        return instance[1:].partition("]")[0]
    if instance.count(":") == 1:
        return instance.partition(":")[0]
    return instance  # a host name, or an IPv6 address without port


def parse_hosts(hosts: str | None, labels: Mapping[str, str]) -> list[str]:
    """The validated inventory hosts of one run: `hosts` (comma-separated) or the instance's."""
    if hosts is None:
        instance = labels.get("instance", "")
        if not instance:
            raise ActionFailed(
                "the alert has no `instance` label to take the host from; "
                "set the action's `hosts`, e.g. hosts: '{{ labels.node }}'"
            )
        names = [host_from_instance(instance)]
    else:
        names = [name.strip() for name in hosts.split(",") if name.strip()]
        if not names:
            raise ActionFailed("the action's `hosts` rendered to no host names")
    return list(dict.fromkeys(check_host(name) for name in names))


def inventory_document(hosts: list[str]) -> str:
    """A YAML inventory (written as JSON, which is YAML) holding exactly `hosts`."""
    return json.dumps({"all": {"hosts": {host: {} for host in hosts}}}, indent=2)


class _Unsafe(str):
    """A string the dumper writes as `!unsafe "…"`."""


class _UnsafeDumper(yaml.SafeDumper):
    """Writes every string value tagged `!unsafe`, double-quoted so any text round-trips."""


def _represent_unsafe(dumper: yaml.SafeDumper, value: _Unsafe) -> yaml.ScalarNode:
    return dumper.represent_scalar("!unsafe", str(value), style='"')


_UnsafeDumper.add_representer(_Unsafe, _represent_unsafe)


def unsafe_vars_document(variables: Mapping[str, str]) -> str:
    """A vars file for `-e @file` in which Ansible treats every value as data, not a template.

    Ansible templates variable values lazily when a task uses them, so a value such as
    `{{ lookup('pipe', 'id') }}` would run a command; `!unsafe` stops that.
    """
    tagged: dict[str, Any] = {str(name): _Unsafe(value) for name, value in variables.items()}
    return yaml.dump(tagged, Dumper=_UnsafeDumper, allow_unicode=True, sort_keys=True)
