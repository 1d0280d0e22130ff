"""The action model, the plugin declaration and `check`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from remediator_integrations.kubernetes import PLUGIN, KubernetesAction, KubernetesSettings
from remediator_integrations.kubernetes.executor import KubernetesExecutor

from remediator.plugins import ExecutorContext

ACTIONS_YAML = """
- type: kubernetes
  action: delete_pod
  namespace: "{{ labels.namespace }}"
  name: "{{ labels.pod }}"
- type: kubernetes
  action: rollout_restart
  kind: deployment
  namespace: "{{ labels.namespace }}"
  name: "{{ labels.deployment }}"
- type: kubernetes
  action: cordon
  node: "{{ labels.node }}"
- type: kubernetes
  action: uncordon
  node: "{{ labels.node }}"
- type: kubernetes
  action: scale
  kind: statefulset
  namespace: shop
  name: db
  replicas: 3
- type: kubernetes
  action: drain
  node: "{{ labels.node }}"
  drain_timeout: 4m
  timeout: 5m
- type: kubernetes
  action: patch
  kind: deployment
  namespace: shop
  name: checkout
  patch: {spec: {template: {spec: {containers: [{name: app, image: "app:2"}]}}}}
- type: kubernetes
  action: run_job
  namespace: ops
  env: {NODE: "{{ labels.node }}"}
  job_template:
    spec:
      template:
        spec:
          containers: [{name: fix, image: "busybox:1.36", command: [sh, -c, "echo $NODE"]}]
"""


def test_the_documented_yaml_validates() -> None:
    actions = [KubernetesAction.model_validate(a) for a in yaml.safe_load(ACTIONS_YAML)]

    assert [a.action for a in actions] == [
        "delete_pod",
        "rollout_restart",
        "cordon",
        "uncordon",
        "scale",
        "drain",
        "patch",
        "run_job",
    ]
    assert actions[5].drain_timeout == timedelta(minutes=4)


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (
            {"action": "scale", "kind": "deployment", "namespace": "a", "name": "b"},
            "needs replicas",
        ),
        (
            {"action": "scale", "kind": "daemonset", "namespace": "a", "name": "b", "replicas": 1},
            "kind deployment or statefulset",
        ),
        ({"action": "cordon", "node": "n", "replicas": 2}, "does not take replicas"),
        ({"action": "rollout_restart", "namespace": "a", "name": "b"}, "needs kind"),
        ({"action": "drain", "node": "n", "drain_timeout": "5m"}, "shorter than timeout"),
        ({"action": "reboot", "node": "n"}, "Input should be"),
        ({"action": "cordon", "node": "{{ labels.node "}, "invalid template"),
        (
            {"action": "patch", "kind": "deployment", "namespace": "a", "name": "b", "patch": {}},
            "patch must not be empty",
        ),
        (
            {"action": "run_job", "namespace": "a", "job_template": {"spec": {}}},
            "needs spec.template.spec.containers",
        ),
        (
            {
                "action": "run_job",
                "namespace": "a",
                "job_template": {
                    "metadata": {"name": "fixed"},
                    "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "b"}]}}},
                },
            },
            "only labels, annotations and generateName",
        ),
    ],
)
def test_each_action_gets_its_fields(action: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        KubernetesAction.model_validate({"type": "kubernetes", **action})


def test_the_plugin_declaration(tmp_path: Path) -> None:
    assert PLUGIN.type == "kubernetes"
    assert PLUGIN.action_model is KubernetesAction
    assert PLUGIN.settings_model is KubernetesSettings
    assert "drain" in PLUGIN.description
    assert KubernetesAction.model_json_schema()["properties"]["action"]["enum"][0] == (
        "rollout_restart"
    )
    context = ExecutorContext(tmp_path, tmp_path, KubernetesSettings(in_cluster=True))
    assert isinstance(PLUGIN.create(context), KubernetesExecutor)


async def test_check_reports_literal_names_kubernetes_refuses() -> None:
    executor = KubernetesExecutor(KubernetesSettings())
    try:
        assert executor.check({"namespace": "Shop", "name": "{{ labels.pod }}"}) == [
            "invalid namespace 'Shop': must be a DNS-1123 label (a-z, 0-9, '-', at most 63 "
            "characters)"
        ]
        assert executor.check({"node": "node-1.example.com", "name": "{{ labels.x }}"}) == []
    finally:
        await executor.close()
