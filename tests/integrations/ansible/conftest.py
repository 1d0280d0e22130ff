"""Real ansible-playbook runs against localhost: playbooks, an executor, requests."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from remediator_integrations.ansible import PLUGIN, AnsibleExecutor, AnsibleSettings

from remediator.plugins import ActionRequest, ExecutorContext

PLAYBOOKS = {
    "write.yml": """
        - hosts: all
          gather_facts: false
          tasks:
            - name: Write the payload
              ansible.builtin.copy:
                dest: "{{ out }}"
                content: "{{ payload }}"
    """,
    "fail.yml": """
        - hosts: all
          gather_facts: false
          tasks:
            - name: Check the disk
              ansible.builtin.ping:
            - name: Clean the disk
              ansible.builtin.fail:
                msg: disk still full
    """,
    "ping.yml": """
        - hosts: all
          gather_facts: false
          tasks:
            - ansible.builtin.ping:
    """,
    "broken.yml": """
        - hosts: all
          tasks:
            - name: not a module
              no_such_module_anywhere: {}
    """,
    "sleep.yml": """
        - hosts: all
          gather_facts: false
          tasks:
            - name: Sleep
              ansible.builtin.shell: "echo $$ > {{ pidfile }}; exec sleep 60"
    """,
    "tagged.yml": """
        - hosts: all
          gather_facts: false
          tasks:
            - name: Tagged a
              ansible.builtin.file: {path: "{{ dir }}/{{ inventory_hostname }}-a", state: touch}
              tags: [a]
            - name: Tagged a and b
              ansible.builtin.file: {path: "{{ dir }}/{{ inventory_hostname }}-b", state: touch}
              tags: [a, b]
            - name: Untagged
              ansible.builtin.file: {path: "{{ dir }}/{{ inventory_hostname }}-c", state: touch}
    """,
}

RequestFactory = Callable[..., ActionRequest]


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    """A playbooks dir holding PLAYBOOKS, plus `sub/` and a file outside it."""
    root = tmp_path / "playbooks"
    (root / "sub").mkdir(parents=True)
    for name, text in PLAYBOOKS.items():
        (root / name).write_text(textwrap.dedent(text))
    (root / "sub" / "ping.yml").write_text(textwrap.dedent(PLAYBOOKS["ping.yml"]))
    (tmp_path / "outside.yml").write_text(textwrap.dedent(PLAYBOOKS["ping.yml"]))
    return root


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """Where the test playbooks write."""
    path = tmp_path / "scratch"
    path.mkdir()
    return path


def settings(**overrides: Any) -> AnsibleSettings:
    """Local connections with this venv's Python, so no interpreter discovery is needed."""
    env = {"ANSIBLE_PYTHON_INTERPRETER": sys.executable}
    values: dict[str, Any] = {"connection": "local", "extra_env": env, **overrides}
    return AnsibleSettings(**values)


async def make_executor(
    playbooks_dir: Path, data_dir: Path, config: AnsibleSettings
) -> AnsibleExecutor:
    """The executor as the service creates it: through the plugin's factory."""
    context = ExecutorContext(playbooks_dir=playbooks_dir, data_dir=data_dir, settings=config)
    executor = PLUGIN.create(context)
    assert isinstance(executor, AnsibleExecutor)
    return executor


@pytest.fixture
async def executor(playbooks_dir: Path, tmp_path: Path) -> AsyncIterator[AnsibleExecutor]:
    """An executor with `connection: local`."""
    created = await make_executor(playbooks_dir, tmp_path / "data", settings())
    yield created
    await created.close()


@pytest.fixture
def request_for() -> RequestFactory:
    """Builds an ActionRequest from rendered params; the alert's instance is localhost."""

    def build(
        params: Mapping[str, Any],
        *,
        labels: Mapping[str, str] | None = None,
        dry_run: bool = False,
    ) -> ActionRequest:
        return ActionRequest(
            job_id=7,
            incident_id=3,
            rule="test-rule",
            action_index=0,
            attempt=1,
            params={"type": "ansible", "timeout": 300, "retries": 0, **params},
            labels={"instance": "localhost:9100"} if labels is None else labels,
            annotations={},
            dry_run=dry_run,
        )

    return build
