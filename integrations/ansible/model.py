"""What rule authors write (`AnsibleAction`) and what operators configure (`AnsibleSettings`)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from remediator.plugins import ActionSpec, Duration, TemplateStr

__all__ = ["AnsibleAction", "AnsibleSettings", "check_extravar_name", "playbook_syntax_problem"]

EXTRAVAR_NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"
TAG_PATTERN: Final = r"^[A-Za-z0-9_.:-]+$"
CONNECTION_PATTERN: Final = r"^[A-Za-z0-9_.]+$"


def playbook_syntax_problem(playbook: str) -> str | None:
    """Why `playbook` cannot name a file inside the playbooks directory, judged by text alone."""
    if not playbook.strip():
        return "playbook is empty"
    path = PurePosixPath(playbook)
    if path.is_absolute() or playbook.startswith("~"):
        return f"playbook {playbook!r} must be a path relative to the playbooks directory"
    if ".." in path.parts:
        return (
            f"playbook {playbook!r} must not contain '..': it would leave the playbooks directory"
        )
    return None


def _check_playbook(playbook: str) -> str:
    problem = playbook_syntax_problem(playbook)
    if problem is not None:
        raise ValueError(problem)
    return playbook


def check_extravar_name(name: str) -> str:
    """`name` unchanged if an extravar may have it; else ValueError saying why."""
    if not re.fullmatch(EXTRAVAR_NAME_PATTERN, name):
        raise ValueError(f"extravar name {name!r} must be a variable name (letters, digits, _)")
    # Connection variables (ansible_ssh_common_args, ansible_become_exe, …) decide what runs
    # where; fed from alert labels they would hand a sender control of the run.
    if name.startswith("ansible_"):
        raise ValueError(
            f"extravar {name!r}: ansible_* variables are not allowed here; set connection "
            "details in the executors.ansible settings or in the playbook's inventory"
        )
    return name


PlaybookPath = Annotated[str, AfterValidator(_check_playbook)]
ExtravarName = Annotated[str, AfterValidator(check_extravar_name)]
Tag = Annotated[str, Field(pattern=TAG_PATTERN)]


class AnsibleAction(ActionSpec):
    """Run an Ansible playbook from the playbooks directory against the alert's host.

    Example::

        - type: ansible
          playbook: disk-cleanup.yml
          extravars: {mountpoint: "{{ labels.mountpoint }}"}
          timeout: 10m
    """

    type: Literal["ansible"]
    playbook: PlaybookPath
    """Playbook path relative to the playbooks directory, e.g. disk-cleanup.yml (not a template)."""
    hosts: TemplateStr | None = None
    """Inventory hosts, comma-separated, e.g. "{{ labels.node }}"; default: the host part of the
    alert's `instance` label (port removed)."""
    extravars: dict[ExtravarName, TemplateStr] = Field(default_factory=dict)
    """Variables for the playbook (`-e`). Values reach Ansible as plain text, never templated:
    a label value containing {{ … }} stays literal."""
    limit: TemplateStr | None = None
    """Ansible host pattern passed as --limit, e.g. "{{ labels.node }}"."""
    tags: list[Tag] = Field(default_factory=list)
    """Run only tasks with these tags (--tags)."""
    skip_tags: list[Tag] = Field(default_factory=list)
    """Skip tasks with these tags (--skip-tags)."""
    check_mode: bool = False
    """Run with ansible-playbook --check: modules report what they would change. Unlike a
    remediator dry run, the playbook really runs (tasks without check mode support still act)."""


class AnsibleSettings(BaseModel):
    """The `executors.ansible` section of the service config."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    remote_user: str | None = Field(None, min_length=1)
    """User to connect as (--user); default: Ansible's (ansible.cfg, then the local user)."""
    private_key_file: Path | None = None
    """SSH private key file (--private-key)."""
    connection: str | None = Field(None, pattern=CONNECTION_PATTERN)
    """Connection plugin (--connection), e.g. ssh or local; default: Ansible's (ssh)."""
    forks: int | None = Field(None, ge=1, le=1000)
    """Parallel hosts per run (--forks); default: Ansible's (5)."""
    extra_env: dict[str, str] = Field(default_factory=dict)
    """Environment for ansible-playbook, e.g. {ANSIBLE_HOST_KEY_CHECKING: "True"}."""
    keep_run_files: Duration = timedelta(days=1)
    """How long each run's private directory (inventory, vars, artifacts) is kept."""
    max_parallel_runs: int = Field(4, ge=1, le=64)
    """Playbook runs at the same time; further runs wait (their timeout keeps counting)."""
