"""Kubernetes name rules, checked on rendered values before any request is made.

Names come from alert labels, which are untrusted: a value like `../../nodes/x` or
`a?dryRun=` must never become part of an API path.
"""

from __future__ import annotations

import re
from typing import Final

from remediator.plugins import ActionFailed

__all__ = ["check_label", "check_subdomain"]

_LABEL: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_RE: Final = re.compile(_LABEL)
_SUBDOMAIN_RE: Final = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_SHOWN: Final = 80


def check_label(what: str, value: str) -> str:
    """`value` if it is a DNS-1123 label (namespaces); else a non-retryable ActionFailed."""
    if len(value) > 63 or not _LABEL_RE.fullmatch(value):
        raise _invalid(what, value, "a DNS-1123 label (a-z, 0-9, '-', at most 63 characters)")
    return value


def check_subdomain(what: str, value: str) -> str:
    """`value` if it is a DNS-1123 subdomain (object and node names); else ActionFailed."""
    if len(value) > 253 or not _SUBDOMAIN_RE.fullmatch(value):
        raise _invalid(
            what, value, "a DNS-1123 subdomain (a-z, 0-9, '-', '.', at most 253 characters)"
        )
    return value


def _invalid(what: str, value: str, rule: str) -> ActionFailed:
    shown = value if len(value) <= _SHOWN else value[:_SHOWN] + "…"
    return ActionFailed(f"invalid {what} {shown!r}: must be {rule}", retryable=False)
