"""The `ansible` action: run a playbook from the playbooks directory with ansible-runner.

See README.md in this folder for the YAML and an example rule.
"""

from __future__ import annotations

from remediator_integrations.ansible.executor import AnsibleExecutor, create
from remediator_integrations.ansible.model import AnsibleAction, AnsibleSettings

from remediator.plugins import ExecutorPlugin

__all__ = ["PLUGIN", "AnsibleAction", "AnsibleExecutor", "AnsibleSettings"]

PLUGIN = ExecutorPlugin(
    type="ansible",
    action_model=AnsibleAction,
    settings_model=AnsibleSettings,
    create=create,
    description="Run an Ansible playbook from the playbooks directory against the alert's host.",
)
