"""integrations/kubernetes/deploy and integrations/alertmanager/alertmanager.yml hold together.

Each core object is read with the official `kubernetes` client's models and written back: the
models keep only the fields they know, so a misspelled or misplaced field makes the round trip
differ from the file. Then the invariants across files: probes, Secret references, replicas
against the PodDisruptionBudget, resources, the ServiceMonitor's selector, the RBAC (equal to
integrations/kubernetes/rbac.yaml), and the ConfigMap's config as remediator itself reads it
(`Config` and `remediator check`, with the environment the Deployment sets). `kubectl kustomize`
and `amtool check-config` run when installed (skipped locally, a failure with CI=true).
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from remediator.config import Config, load_config
from tests.conftest import REPO, missing
from tests.e2e.conftest import WEBHOOK, child_env, remediator_command

DEPLOY = REPO / "integrations" / "kubernetes" / "deploy"
RBAC = REPO / "integrations" / "kubernetes" / "rbac.yaml"
SNIPPET = REPO / "integrations" / "alertmanager" / "alertmanager.yml"
DOCKERFILE = REPO / "Dockerfile"
SECRET_EXAMPLE = "secret.example.yaml"
IMAGE_WORKDIR = "/etc/remediator"
DRAIN_SECONDS = 10  # `remediator serve` lets in-flight requests finish this long (cli.py)
RUN_TIMEOUT = 60.0

# kind -> (apiVersion, the client's model). Every kind in deploy/ is here or in CUSTOM.
MODELS = {
    "Deployment": ("apps/v1", "V1Deployment"),
    "Service": ("v1", "V1Service"),
    "PodDisruptionBudget": ("policy/v1", "V1PodDisruptionBudget"),
    "ServiceAccount": ("v1", "V1ServiceAccount"),
    "ClusterRole": ("rbac.authorization.k8s.io/v1", "V1ClusterRole"),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1", "V1ClusterRoleBinding"),
    "Role": ("rbac.authorization.k8s.io/v1", "V1Role"),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "V1RoleBinding"),
    "ConfigMap": ("v1", "V1ConfigMap"),
    "Secret": ("v1", "V1Secret"),
}
CUSTOM = {"ServiceMonitor": "monitoring.coreos.com/v1"}

Manifest = dict[str, Any]


def load(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kustomization() -> Manifest:
    [doc] = load(DEPLOY / "kustomization.yaml")
    return doc


def manifests() -> list[tuple[str, Manifest]]:
    """(file name, object) for every object kustomization.yaml applies."""
    return [(name, doc) for name in kustomization()["resources"] for doc in load(DEPLOY / name)]


def one(kind: str) -> Manifest:
    [doc] = [doc for _, doc in manifests() if doc["kind"] == kind]
    return doc


def container() -> Manifest:
    containers: list[Manifest] = one("Deployment")["spec"]["template"]["spec"]["containers"]
    [main] = containers
    return main


def secret_example() -> Manifest:
    [secret] = load(DEPLOY / SECRET_EXAMPLE)
    return secret


def round_trip(doc: Manifest) -> Any:
    """The object as the client's model reads and writes it (unknown fields are dropped)."""
    client: Any = ApiClient()  # the name-mangled deserializer is not in its type
    model = client._ApiClient__deserialize(copy.deepcopy(doc), MODELS[doc["kind"]][1])
    return client.sanitize_for_serialization(model)


def deployment_env() -> dict[str, str]:
    """The container's environment as the kubelet sets it, Secret values from the example."""
    data = secret_example()["stringData"]
    env = {}
    for var in container()["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = data[ref["key"]]
    return env


def dockerfile_user() -> tuple[int, str]:
    """(uid, home) of the image's user, from the Dockerfile's useradd."""
    text = DOCKERFILE.read_text()
    uid = re.search(r"useradd\b.*--uid (\d+)", text)
    home = re.search(r"useradd\b.*--home-dir (\S+)", text)
    assert uid, "the Dockerfile no longer creates its user with useradd --uid"
    assert home, "the Dockerfile no longer gives its user a --home-dir"
    return int(uid[1]), home[1]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# -- the files ------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    listed = kustomization()["resources"]
    files = {p.name for p in DEPLOY.iterdir()} - {"kustomization.yaml", SECRET_EXAMPLE}
    assert sorted(listed) == sorted(files)
    assert len(set(listed)) == len(listed)
    assert (DEPLOY / SECRET_EXAMPLE).is_file()


def test_every_object_is_namespace_agnostic_and_of_a_known_kind() -> None:
    for name, doc in [*manifests(), (SECRET_EXAMPLE, secret_example())]:
        kind = doc["kind"]
        expected = MODELS[kind][0] if kind in MODELS else CUSTOM.get(kind)
        assert doc["apiVersion"] == expected, f"{name}: {kind} {doc['apiVersion']}"
        assert "namespace" not in doc["metadata"], f"{name}: {kind} names a namespace"


@pytest.mark.parametrize(
    "doc",
    [doc for _, doc in manifests() if doc["kind"] in MODELS] + [secret_example()],
    ids=lambda doc: f"{doc['kind']}-{doc['metadata']['name']}",
)
def test_object_survives_the_client_models_round_trip(doc: Manifest) -> None:
    assert round_trip(doc) == doc


def test_the_round_trip_catches_a_misspelled_field() -> None:
    deployment = copy.deepcopy(one("Deployment"))
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["httpGet"]["paht"] = probe["httpGet"].pop("path")
    assert round_trip(deployment) != deployment


def test_kustomize_renders_every_object_in_one_namespace() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        missing("kubectl not installed (it renders the kustomization)")
    assert kubectl is not None
    result = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
    namespace = kustomization()["namespace"]
    assert len(rendered) == len(manifests())
    for doc in rendered:
        if doc["kind"] not in {"ClusterRole", "ClusterRoleBinding"}:
            assert doc["metadata"]["namespace"] == namespace, doc["kind"]
    [binding] = [doc for doc in rendered if doc["kind"] == "ClusterRoleBinding"]
    assert {s["namespace"] for s in binding["subjects"]} == {namespace}


# -- the Deployment -------------------------------------------------------------------------


def test_probes_use_healthz_and_readyz_on_the_served_port() -> None:
    main = container()
    [port] = main["ports"]
    assert port == {"name": "http", "containerPort": 9095, "protocol": "TCP"}
    probes = {kind: main[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe")}
    probes["readinessProbe"] = main["readinessProbe"]["httpGet"]
    assert probes == {
        "startupProbe": {"path": "/healthz", "port": "http"},
        "livenessProbe": {"path": "/healthz", "port": "http"},
        "readinessProbe": {"path": "/readyz", "port": "http"},
    }
    # A liveness failure restarts the pod: never before the startup probe allowed for.
    assert main["startupProbe"]["failureThreshold"] * main["startupProbe"]["periodSeconds"] >= 60


def test_every_secret_reference_is_in_the_example_secret() -> None:
    example = secret_example()
    refs = [var["valueFrom"]["secretKeyRef"] for var in container()["env"] if "valueFrom" in var]
    assert refs, "the Deployment reads nothing from the Secret"
    for ref in refs:
        assert ref["name"] == example["metadata"]["name"]
        assert ref["key"] in example["stringData"]
    assert {ref["key"] for ref in refs} == set(example["stringData"]), "unused Secret keys"
    by_name = {var["name"]: var for var in container()["env"]}
    assert by_name["REMEDIATOR_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "database-url"
    assert example["stringData"]["database-url"].startswith("postgresql+asyncpg://")


def test_replicas_and_the_disruption_budget_let_one_go_at_a_time() -> None:
    deployment, pdb = one("Deployment"), one("PodDisruptionBudget")
    replicas = deployment["spec"]["replicas"]
    assert replicas >= 2
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]},
    }
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    spec = deployment["spec"]["template"]["spec"]
    keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
    assert "kubernetes.io/hostname" in keys
    for constraint in spec["topologySpreadConstraints"]:
        assert selects(constraint["labelSelector"]["matchLabels"], pod_labels)


def test_resources_are_requested_and_limited() -> None:
    resources = container()["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"cpu", "memory"}


def test_the_pod_runs_as_the_images_user_on_a_read_only_root() -> None:
    uid, home = dockerfile_user()
    spec = one("Deployment")["spec"]["template"]["spec"]
    main = container()
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == main["securityContext"]["runAsUser"] == uid
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in main["volumeMounts"]}
    assert "emptyDir" in mounts[home]
    assert "emptyDir" in mounts["/tmp"]
    assert deployment_env()["HOME"] == home
    config_mount = mounts[f"{IMAGE_WORKDIR}/config"]
    assert config_mount["configMap"]["name"] == "remediator-config"


def test_the_grace_period_covers_the_prestop_sleep_and_the_drain() -> None:
    spec = one("Deployment")["spec"]["template"]["spec"]
    command = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert int(command[1]) + DRAIN_SECONDS < spec["terminationGracePeriodSeconds"]


# -- Service and ServiceMonitor -------------------------------------------------------------


def test_service_and_service_monitor_reach_the_pods_port() -> None:
    service, monitor = one("Service"), one("ServiceMonitor")
    pod_labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert selects(service["spec"]["selector"], pod_labels)
    [port] = service["spec"]["ports"]
    assert port == {"name": "http", "port": 9095, "targetPort": "http", "protocol": "TCP"}
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == port["name"]
    assert endpoint["path"] == "/metrics"


# -- RBAC -----------------------------------------------------------------------------------


def test_the_pods_service_account_is_bound_to_exactly_the_executors_rules() -> None:
    reference = {doc["kind"]: doc for doc in load(RBAC)}
    account = one("ServiceAccount")["metadata"]["name"]
    assert one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == account
    assert account == reference["ServiceAccount"]["metadata"]["name"]

    roles = [doc for _, doc in manifests() if doc["kind"] in {"Role", "ClusterRole"}]
    bindings = [doc for _, doc in manifests() if doc["kind"].endswith("RoleBinding")]
    assert roles
    assert bindings
    for role in roles:
        assert role["rules"] == reference["ClusterRole"]["rules"], role["metadata"]["name"]
    bound = {(b["roleRef"]["kind"], b["roleRef"]["name"]) for b in bindings}
    assert bound == {(r["kind"], r["metadata"]["name"]) for r in roles}
    for binding in bindings:
        assert binding["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
        # No namespace: kustomize fills in the kustomization's (test_kustomize_renders_…).
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account}]


# -- the ConfigMap's config, as remediator reads it -----------------------------------------


def image_layout(root: Path) -> Path:
    """The pod's /etc/remediator under `root`: the image's rules/ and playbooks/, and the
    ConfigMap mounted at config/ as the kubelet does it (each file a symlink through ..data
    into a timestamped directory). Paths to /etc/remediator in the ConfigMap point under
    `root`, like a chroot. Returns the directory that is /etc/remediator in the pod.
    """
    workdir = root / IMAGE_WORKDIR.lstrip("/")
    shutil.copytree(REPO / "rules", workdir / "rules")
    shutil.copytree(REPO / "playbooks", workdir / "playbooks")
    mount = workdir / "config"
    snapshot = mount / "..2026_11_21_12_00_00.000000001"
    snapshot.mkdir(parents=True)
    (mount / "..data").symlink_to(snapshot.name)
    for name, text in one("ConfigMap")["data"].items():
        (snapshot / name).write_text(text.replace(IMAGE_WORKDIR, str(workdir)))
        (mount / name).symlink_to(f"..data/{name}")
    return workdir


def pod_env(workdir: Path) -> dict[str, str]:
    """The Deployment's environment with its paths under `workdir` instead of the image's."""
    return {k: v.replace(IMAGE_WORKDIR, str(workdir)) for k, v in deployment_env().items()}


def test_config_paths_are_absolute() -> None:
    """Relative paths would resolve into the ConfigMap's timestamped snapshot directory."""
    config = yaml.safe_load(one("ConfigMap")["data"]["config.yml"])
    paths = [*config["rules"], config["playbooks_dir"], config["remediation"]["data_dir"]]
    assert all(path.startswith("/") for path in paths), paths


def test_the_config_map_config_validates_with_the_deployments_environment(
    tmp_path: Path,
) -> None:
    workdir = image_layout(tmp_path)
    env = pod_env(workdir)
    config = load_config(Path(env["REMEDIATOR_CONFIG"]), environ=env)
    assert isinstance(config, Config)
    assert config.database_url == secret_example()["stringData"]["database-url"]
    assert config.host_port[1] == container()["ports"][0]["containerPort"]
    assert config.executors["kubernetes"]["in_cluster"] is True
    # Every secret the config names comes from the Deployment's environment.
    named = [token.token_env for token in config.auth.tokens]
    assert config.intake.auth is not None
    named.append(config.intake.auth.bearer_token_env)
    assert all(name is not None and name in env for name in named)
    assert all(token.token is None and token.token_file is None for token in config.auth.tokens)
    # Writable only where the pod has emptyDirs (the root filesystem is read-only).
    _, home = dockerfile_user()
    assert config.resolve_path(config.remediation.data_dir).is_relative_to(home)
    # The image's playbooks, and rules that exist (shipped ones, then the mounted file).
    assert config.resolve_path(config.playbooks_dir) == workdir / "playbooks"
    rules = [config.resolve_path(path) for path in config.rules]
    assert rules == [workdir / "rules", workdir / "config" / "site-rules.yml"]
    assert all(path.exists() for path in rules)


def test_remediator_check_accepts_the_config_map(tmp_path: Path) -> None:
    workdir = image_layout(tmp_path)
    result = subprocess.run(
        remediator_command("check"),
        cwd=workdir,
        env={**child_env(), **pod_env(workdir)},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    shipped = sum(len(load(path)[0]["rules"]) for path in (REPO / "rules").glob("*.yml"))
    site = yaml.safe_load(one("ConfigMap")["data"]["site-rules.yml"])["rules"]
    assert result.stdout.strip() == f"SUCCESS: {shipped + len(site)} rules found"


# -- Alertmanager ---------------------------------------------------------------------------


def amtool() -> str:
    binary = shutil.which("amtool")
    if binary is None:
        missing("amtool not installed: apt-get install prometheus-alertmanager")
    assert binary is not None
    return binary


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [amtool(), "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def test_the_alertmanager_snippet_passes_amtool(tmp_path: Path) -> None:
    result = check_config(SNIPPET)
    assert result.returncode == 0, result.stdout + result.stderr
    # amtool does reject what Alertmanager would: the same receiver with two credentials.
    broken = yaml.safe_load(SNIPPET.read_text())
    auth = broken["receivers"][0]["webhook_configs"][0]["http_config"]["authorization"]
    auth["credentials"] = "inline-too"
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    assert check_config(tmp_path / "broken.yml").returncode != 0


def test_the_alertmanager_snippet_sends_resolved_alerts_with_the_webhook_token() -> None:
    snippet = yaml.safe_load(SNIPPET.read_text())
    assert snippet["route"]["receiver"] == "remediator"
    [receiver] = snippet["receivers"]
    [webhook] = receiver["webhook_configs"]
    assert webhook["send_resolved"] is True
    assert webhook["http_config"] == {
        "authorization": {
            "type": "Bearer",
            "credentials_file": "/etc/alertmanager/secrets/remediator-webhook/token",
        }
    }
    service = one("Service")
    host = f"{service['metadata']['name']}.{kustomization()['namespace']}.svc"
    assert webhook["url"] == f"http://{host}:{service['spec']['ports'][0]['port']}{WEBHOOK}"
    # ...which is the scheme remediator's intake expects in the cluster.
    intake = yaml.safe_load(one("ConfigMap")["data"]["config.yml"])["intake"]
    assert set(intake["auth"]) == {"bearer_token_env"}
