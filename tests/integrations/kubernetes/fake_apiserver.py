"""A fake Kubernetes API server that holds the client to the real API's contract.

Only what the kubernetes executor uses is served, but exactly as a real kube-apiserver does:
the real paths and verbs (anything else is a 404 or 405 `Status`), bearer-token auth, the
PATCH media types it accepts (415 otherwise), strict Eviction bodies, `dryRun=All` (validated
and answered, never stored), `Status` bodies for every error, and real-shaped objects that
the client's typed models must be able to read. Tests seed objects, script PDB refusals and
Job outcomes, inject faults, and read `requests` to see what went over the wire.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import random
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from aiohttp import web

TOKEN: Final = "fake-token"
STRATEGIC: Final = "application/strategic-merge-patch+json"
MERGE: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
PATCH_TYPES: Final = (JSON_PATCH, MERGE, STRATEGIC, "application/apply-patch+yaml")
PDB_MESSAGE: Final = "Cannot evict pod as it would violate the pod's disruption budget."
WORKLOADS: Final = {
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
}

Json = dict[str, Any]
Key = tuple[str, str]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """Answered as a `Status` body, as the API server does for every failure."""

    REASONS: Final = {
        400: "BadRequest",
        401: "Unauthorized",
        404: "NotFound",
        405: "MethodNotAllowed",
        409: "Conflict",
        415: "UnsupportedMediaType",
        422: "Invalid",
        429: "TooManyRequests",
        500: "InternalError",
        503: "ServiceUnavailable",
    }

    def __init__(self, code: int, message: str, reason: str | None = None, **details: Any):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details
        self.reason = reason or self.REASONS.get(code, "Unknown")

    def response(self) -> web.Response:
        body: Json = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return web.json_response(body, status=self.code)


@dataclass
class Recorded:
    """One request as it arrived."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any


@dataclass
class JobScript:
    """How the fake Job controller runs the next Jobs."""

    outcome: Literal["Complete", "Failed", "Hang"] = "Complete"
    logs: str = "done\n"
    status_reads: int = 2
    """Job status reads before the outcome appears."""


@dataclass
class Fault:
    method: str
    path: str
    error: ApiError
    times: int


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_ok(code: int = 200, **details: Any) -> web.Response:
    body: Json = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        body["details"] = details
    body["code"] = code
    return web.json_response(body, status=code)


def strategic_merge(target: Any, patch: Any) -> Any:
    """Strategic merge for the built-in types used here: maps merge, null deletes, lists of
    named items (containers, env, volumes) merge by `name`, other lists are replaced."""
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, list) and _named(value) and _named(merged.get(key)):
            items = {item["name"]: item for item in merged[key]}
            for item in value:
                items[item["name"]] = strategic_merge(items.get(item["name"], {}), item)
            merged[key] = list(items.values())
        else:
            merged[key] = strategic_merge(merged.get(key), value)
    return merged


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: lists are replaced as a whole."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def _named(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, dict) and "name" in i for i in value)


def _json_patch(target: Json, ops: Any) -> Json:
    if not isinstance(ops, list):
        raise ApiError(400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    result = copy.deepcopy(target)
    for op in ops:
        *parents, last = [
            p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]
        ]
        node = result
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if op["op"] in ("add", "replace"):
            node[last] = op["value"]
        elif op["op"] == "remove":
            node.pop(last, None)
        else:
            raise ApiError(422, f"Unexpected kind: {op['op']}")
    return result


class FakeApiServer:
    """State, scripting and the aiohttp application of one fake cluster."""

    def __init__(self) -> None:
        self.store: dict[str, dict[Key, Json]] = {
            r: {} for r in [*WORKLOADS, "pods", "nodes", "jobs"]
        }
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.pdb_refusals: dict[Key, int] = {}
        """Evictions of a pod refused with 429 before one is allowed; -1: always refused."""
        self.terminating_reads: int = 1
        """GETs an evicted pod survives (with a deletionTimestamp) before it is gone."""
        self.job_script = JobScript()
        self.logs: dict[tuple[str, str, str], str] = {}
        self.job_polled = asyncio.Event()
        """Set when a Job's status is first read: the client is waiting for it."""
        self._job_reads: dict[Key, int] = {}
        self._dying: dict[Key, int] = {}
        self._counter = itertools.count(1000)

    # -- seeding and scripting -------------------------------------------------------------

    def meta(self, namespace: str | None, name: str, **extra: Any) -> Json:
        meta: Json = {"name": name, "uid": f"uid-{next(self._counter)}"}
        if namespace is not None:
            meta["namespace"] = namespace
        meta |= {"resourceVersion": str(next(self._counter)), "creationTimestamp": now()}
        return meta | extra

    def add_workload(self, resource: str, namespace: str, name: str, replicas: int = 2) -> Json:
        labels = {"app": name}
        spec: Json = {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "app", "image": "registry.example/app:1.0"}],
                    "restartPolicy": "Always",
                },
            },
        }
        if resource != "daemonsets":
            spec["replicas"] = replicas
        obj: Json = {
            "kind": WORKLOADS[resource],
            "apiVersion": "apps/v1",
            "metadata": self.meta(namespace, name, generation=1, labels=labels),
            "spec": spec,
            "status": _workload_status(resource, replicas),
        }
        self.store[resource][(namespace, name)] = obj
        return obj

    def add_node(self, name: str) -> Json:
        obj: Json = {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": self.meta(None, name, labels={"kubernetes.io/hostname": name}),
            "spec": {"podCIDR": "10.244.1.0/24"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
        self.store["nodes"][("", name)] = obj
        return obj

    def add_pod(
        self,
        namespace: str,
        name: str,
        node: str = "node-1",
        *,
        owner: tuple[str, str] | None = ("ReplicaSet", "web-5d8f7"),
        mirror: bool = False,
        containers: tuple[str, ...] = ("app",),
        labels: dict[str, str] | None = None,
    ) -> Json:
        extra: Json = {"labels": labels or {"app": name}}
        if owner is not None:
            api = (
                "apps/v1" if owner[0] in ("ReplicaSet", "DaemonSet", "StatefulSet") else "batch/v1"
            )
            extra["ownerReferences"] = [
                {"apiVersion": api, "kind": owner[0], "name": owner[1], "uid": "uid-owner",
                 "controller": True, "blockOwnerDeletion": True}
            ]  # fmt: skip
        if mirror:
            extra["annotations"] = {
                "kubernetes.io/config.mirror": "0c5a1f",
                "kubernetes.io/config.source": "file",
            }
        obj: Json = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": self.meta(namespace, name, **extra),
            "spec": {
                "nodeName": node,
                "containers": [
                    {"name": c, "image": "registry.example/app:1.0"} for c in containers
                ],
                "restartPolicy": "Always",
            },
            "status": {"phase": "Running"},
        }
        self.store["pods"][(namespace, name)] = obj
        return obj

    def fail(self, method: str, path: str, code: int, message: str, times: int = 1) -> None:
        """Answer the next `times` requests `method path` with an error Status."""
        self.faults.append(Fault(method, path, ApiError(code, message), times))

    def sent(self, method: str, path_part: str = "") -> list[Recorded]:
        """Recorded requests with this method whose path contains `path_part`."""
        return [r for r in self.requests if r.method == method and path_part in r.path]

    # -- the application ---------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        ns = "/namespaces/{ns}"
        wl = "{res:deployments|statefulsets|daemonsets}"
        app.router.add_route("GET", f"/apis/apps/v1{ns}/{wl}/{{name}}", self.get_workload)
        app.router.add_route("PATCH", f"/apis/apps/v1{ns}/{wl}/{{name}}", self.patch_workload)
        scalable = "{res:deployments|statefulsets}"
        app.router.add_route("GET", f"/apis/apps/v1{ns}/{scalable}/{{name}}/scale", self.get_scale)
        app.router.add_route(
            "PATCH", f"/apis/apps/v1{ns}/{scalable}/{{name}}/scale", self.patch_scale
        )
        app.router.add_route("GET", "/api/v1/pods", self.list_all_pods)
        app.router.add_route("GET", f"/api/v1{ns}/pods", self.list_pods)
        app.router.add_route("GET", f"/api/v1{ns}/pods/{{name}}", self.get_pod)
        app.router.add_route("DELETE", f"/api/v1{ns}/pods/{{name}}", self.delete_pod)
        app.router.add_route("POST", f"/api/v1{ns}/pods/{{name}}/eviction", self.evict)
        app.router.add_route("GET", f"/api/v1{ns}/pods/{{name}}/log", self.pod_log)
        app.router.add_route("GET", "/api/v1/nodes/{name}", self.get_node)
        app.router.add_route("PATCH", "/api/v1/nodes/{name}", self.patch_node)
        app.router.add_route("POST", f"/apis/batch/v1{ns}/jobs", self.create_job)
        app.router.add_route("GET", f"/apis/batch/v1{ns}/jobs/{{name}}", self.get_job)
        app.router.add_route("GET", f"/apis/batch/v1{ns}/jobs/{{name}}/status", self.get_job)
        app.router.add_route("DELETE", f"/apis/batch/v1{ns}/jobs/{{name}}", self.delete_job)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self.requests.append(
            Recorded(request.method, request.path, dict(request.query), request.content_type, body)
        )
        try:
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                raise ApiError(401, "Unauthorized")
            dry_run = request.query.getall("dryRun", [])
            if any(value != "All" for value in dry_run):
                raise ApiError(
                    400, f'dryRun: Unsupported value: "{dry_run[0]}": supported values: "All"'
                )
            for fault in self.faults:
                if fault.times and fault.method == request.method and fault.path == request.path:
                    fault.times -= 1
                    raise fault.error
            return await handler(request)
        except ApiError as error:
            return error.response()
        except web.HTTPMethodNotAllowed:
            return ApiError(
                405, "the server does not allow this method on the requested resource"
            ).response()
        except web.HTTPNotFound:
            return ApiError(404, "the server could not find the requested resource").response()

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _dry(request: web.Request) -> bool:
        return request.query.get("dryRun") == "All"

    def _get(self, resource: str, key: Key) -> Json:
        obj = self.store[resource].get(key)
        if obj is None:
            group = {"jobs": "batch", **{r: "apps" for r in WORKLOADS}}.get(resource, "")
            qualified = f"{resource}.{group}" if group else resource
            raise ApiError(
                404, f'{qualified} "{key[1]}" not found', name=key[1], group=group, kind=resource
            )
        return obj

    async def _patched(self, request: web.Request, current: Json) -> Json:
        kind = request.content_type
        if kind not in PATCH_TYPES:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types "
                "include: " + ", ".join(PATCH_TYPES),
            )
        if kind == "application/apply-patch+yaml":
            raise ApiError(400, "fake apiserver: server-side apply is not implemented")
        try:
            patch = json.loads(await request.read())
        except ValueError:
            raise ApiError(400, "error decoding patch: invalid JSON") from None
        if kind == JSON_PATCH:
            return _json_patch(current, patch)
        if not isinstance(patch, dict):
            raise ApiError(
                400,
                "error decoding patch: json: cannot unmarshal array "
                "into Go value of type map[string]interface {}",
            )
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                f"Operation cannot be fulfilled on {current['kind'].lower()}s "
                f'"{current["metadata"]["name"]}": '
                "the object has been modified; please apply your "
                "changes to the latest version and try again",
            )
        merged: Json = (
            strategic_merge(current, patch) if kind == STRATEGIC else merge_patch(current, patch)
        )
        return merged

    def _commit(self, resource: str, key: Key, old: Json, new: Json, request: web.Request) -> Json:
        # As the real strategies do, generation is bumped under dry run too; only storing is not.
        if "generation" in new["metadata"] and new.get("spec") != old.get("spec"):
            new["metadata"]["generation"] = old["metadata"]["generation"] + 1
        if self._dry(request):
            return new
        new["metadata"]["resourceVersion"] = str(next(self._counter))
        self.store[resource][key] = new
        return new

    # -- workloads ---------------------------------------------------------------------------

    async def get_workload(self, request: web.Request) -> web.Response:
        info = request.match_info
        return web.json_response(self._get(info["res"], (info["ns"], info["name"])))

    async def patch_workload(self, request: web.Request) -> web.Response:
        info = request.match_info
        key = (info["ns"], info["name"])
        old = self._get(info["res"], key)
        new = await self._patched(request, old)
        _validate_workload(old, new)
        return web.json_response(self._commit(info["res"], key, old, new, request))

    def _scale(self, workload: Json) -> Json:
        meta = workload["metadata"]
        selector = ",".join(
            f"{k}={v}" for k, v in workload["spec"]["selector"]["matchLabels"].items()
        )
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            },
            "spec": {"replicas": workload["spec"]["replicas"]},
            "status": {"replicas": workload["status"].get("replicas", 0), "selector": selector},
        }

    async def get_scale(self, request: web.Request) -> web.Response:
        info = request.match_info
        return web.json_response(self._scale(self._get(info["res"], (info["ns"], info["name"]))))

    async def patch_scale(self, request: web.Request) -> web.Response:
        info = request.match_info
        key = (info["ns"], info["name"])
        old = self._get(info["res"], key)
        scale = await self._patched(request, self._scale(old))
        replicas = scale.get("spec", {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(
                422,
                f'Scale.autoscaling "{key[1]}" is invalid: '
                f"spec.replicas: Invalid value: {replicas}: "
                "must be greater than or equal to 0",
            )
        new = copy.deepcopy(old)
        new["spec"]["replicas"] = replicas
        committed = self._commit(info["res"], key, old, new, request)
        return web.json_response(self._scale(committed))

    # -- pods --------------------------------------------------------------------------------

    def _pod_list(self, pods: list[Json]) -> web.Response:
        items = [{k: v for k, v in p.items() if k not in ("kind", "apiVersion")} for p in pods]
        return web.json_response(
            {
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(next(self._counter))},
                "items": items,
            }
        )

    async def list_all_pods(self, request: web.Request) -> web.Response:
        selector = request.query.get("fieldSelector", "")
        field_name, _, value = selector.partition("=")
        if field_name != "spec.nodeName" or not value:
            raise ApiError(400, f'field label not supported: "{field_name}"')
        return self._pod_list(
            [p for p in self.store["pods"].values() if p["spec"].get("nodeName") == value]
        )

    async def list_pods(self, request: web.Request) -> web.Response:
        wanted = dict(
            part.split("=", 1) for part in request.query.get("labelSelector", "").split(",") if part
        )
        pods = [
            p
            for (ns, _), p in self.store["pods"].items()
            if ns == request.match_info["ns"]
            and all(p["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]
        return self._pod_list(pods)

    async def get_pod(self, request: web.Request) -> web.Response:
        key = (request.match_info["ns"], request.match_info["name"])
        pod = self._get("pods", key)
        if key in self._dying:  # an evicted pod goes after a few reads, as kubelets take time
            self._dying[key] -= 1
            if self._dying[key] < 0:
                del self.store["pods"][key], self._dying[key]
        return web.json_response(pod)

    async def delete_pod(self, request: web.Request) -> web.Response:
        key = (request.match_info["ns"], request.match_info["name"])
        pod = copy.deepcopy(self._get("pods", key))
        grace = request.query.get("gracePeriodSeconds")
        if grace is not None and (not grace.isdigit()):
            raise ApiError(400, f"invalid gracePeriodSeconds {grace!r}")
        pod["metadata"]["deletionTimestamp"] = now()
        pod["metadata"]["deletionGracePeriodSeconds"] = int(grace) if grace is not None else 30
        if not self._dry(request):
            del self.store["pods"][key]
        return web.json_response(pod)

    async def evict(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        _check_eviction(await _json_body(request), ns, name)
        self._get("pods", (ns, name))
        refusals = self.pdb_refusals.get((ns, name), 0)
        if refusals:
            if refusals > 0 and not self._dry(request):
                self.pdb_refusals[(ns, name)] = refusals - 1
            raise ApiError(
                429,
                PDB_MESSAGE,
                causes=[
                    {
                        "reason": "DisruptionBudget",
                        "message": "The disruption budget web-pdb "
                        "needs 2 healthy pods and has 2 currently",
                    }
                ],
            )
        if not self._dry(request):
            self.store["pods"][(ns, name)]["metadata"]["deletionTimestamp"] = now()
            self._dying[(ns, name)] = self.terminating_reads
        return status_ok(201)

    async def pod_log(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        pod = self._get("pods", (ns, name))
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = request.query.get("container")
        if container is None:
            if len(names) > 1:
                raise ApiError(
                    400,
                    "a container name must be specified for pod "
                    f"{name}, choose one of: [{' '.join(names)}]",
                )
            container = names[0]
        if container not in names:
            raise ApiError(400, f"container {container} is not valid for pod {name}")
        text = self.logs.get((ns, name, container), "")
        tail = request.query.get("tailLines")
        if tail is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(tail) :]) if int(tail) else ""
        return web.Response(text=text, content_type="text/plain")

    # -- nodes -------------------------------------------------------------------------------

    async def get_node(self, request: web.Request) -> web.Response:
        return web.json_response(self._get("nodes", ("", request.match_info["name"])))

    async def patch_node(self, request: web.Request) -> web.Response:
        key = ("", request.match_info["name"])
        old = self._get("nodes", key)
        new = await self._patched(request, old)
        value = new["spec"].get("unschedulable")
        if value is not None and not isinstance(value, bool):
            raise ApiError(
                400,
                "json: cannot unmarshal into Go struct field "
                "NodeSpec.spec.unschedulable of type bool",
            )
        return web.json_response(self._commit("nodes", key, old, new, request))

    # -- jobs --------------------------------------------------------------------------------

    async def create_job(self, request: web.Request) -> web.Response:
        ns = request.match_info["ns"]
        job = await _json_body(request)
        if (
            not isinstance(job, dict)
            or job.get("apiVersion") != "batch/v1"
            or job.get("kind") != "Job"
        ):
            raise ApiError(
                400,
                "the API version in the data (%s) does not "
                "match the expected API version (batch/v1)"
                % (job.get("apiVersion") if isinstance(job, dict) else None),
            )
        meta = job.setdefault("metadata", {})
        if meta.get("namespace", ns) != ns:
            raise ApiError(
                400,
                "the namespace of the provided object does "
                "not match the namespace sent on the request",
            )
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(
                    422,
                    'Job.batch "" is invalid: metadata.name: Required '
                    "value: name or generateName is required",
                )
            suffix = "".join(random.choices("bcdfghjklmnpqrstvwxz2456789", k=5))
            meta["name"] = meta["generateName"] + suffix
        name = meta["name"]
        _validate_job(name, job["spec"])
        if (ns, name) in self.store["jobs"]:
            raise ApiError(409, f'jobs.batch "{name}" already exists', reason="AlreadyExists")
        uid = f"uid-{next(self._counter)}"
        job["metadata"] = meta | self.meta(ns, name, uid=uid, generation=1)
        controller = {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
        template = job["spec"]["template"]
        template.setdefault("metadata", {}).setdefault("labels", {}).update(controller)
        job["spec"].setdefault(
            "selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        )
        job["spec"].setdefault("completions", 1)
        job["spec"].setdefault("parallelism", 1)
        job["status"] = {}
        if not self._dry(request):
            self.store["jobs"][(ns, name)] = job
            self._start_pod(ns, job)
        return web.json_response(job, status=201)

    def _start_pod(self, ns: str, job: Json) -> None:
        name = job["metadata"]["name"]
        pod_name = f"{name}-{''.join(random.choices(string.ascii_lowercase, k=5))}"
        containers = tuple(c["name"] for c in job["spec"]["template"]["spec"]["containers"])
        pod = self.add_pod(ns, pod_name, owner=("Job", name), containers=containers,
                           labels=dict(job["spec"]["template"]["metadata"]["labels"]))  # fmt: skip
        pod["spec"]["containers"] = copy.deepcopy(job["spec"]["template"]["spec"]["containers"])
        pod["spec"]["restartPolicy"] = job["spec"]["template"]["spec"]["restartPolicy"]
        for container in containers:
            self.logs[(ns, pod_name, container)] = self.job_script.logs
        self._job_reads[(ns, name)] = 0

    async def get_job(self, request: web.Request) -> web.Response:
        key = (request.match_info["ns"], request.match_info["name"])
        job = self._get("jobs", key)
        self._job_reads[key] = self._job_reads.get(key, 0) + 1
        self.job_polled.set()
        script = self.job_script
        if (
            not job["status"].get("conditions")
            and script.outcome != "Hang"
            and self._job_reads[key] >= script.status_reads
        ):
            condition: Json = {
                "type": script.outcome,
                "status": "True",
                "lastProbeTime": now(),
                "lastTransitionTime": now(),
            }
            if script.outcome == "Failed":
                condition |= {
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                }
                job["status"] |= {"failed": 1}
            else:
                job["status"] |= {"succeeded": 1, "completionTime": now()}
            job["status"]["conditions"] = [condition]
        return web.json_response(job)

    async def delete_job(self, request: web.Request) -> web.Response:
        key = (request.match_info["ns"], request.match_info["name"])
        job = self._get("jobs", key)
        policy = request.query.get("propagationPolicy", "Orphan")
        if policy not in ("Orphan", "Background", "Foreground"):
            raise ApiError(
                422,
                'DeleteOptions.meta.k8s.io "" is invalid: '
                f'propagationPolicy: Unsupported value: "{policy}"',
            )
        if not self._dry(request):
            del self.store["jobs"][key]
            if policy != "Orphan":
                for pod_key, pod in list(self.store["pods"].items()):
                    if (
                        pod["metadata"].get("labels", {}).get("job-name") == key[1]
                        and pod_key[0] == key[0]
                    ):
                        del self.store["pods"][pod_key]
        return status_ok(200, name=key[1], group="batch", kind="jobs", uid=job["metadata"]["uid"])


async def _json_body(request: web.Request) -> Any:
    """A create's JSON body. Like the real server, no Content-Type at all means JSON."""
    if "Content-Type" in request.headers and request.content_type != "application/json":
        raise ApiError(
            415,
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml, application/vnd.kubernetes.protobuf",
        )
    try:
        return json.loads(await request.read())
    except ValueError:
        raise ApiError(400, "the body of the request could not be decoded as JSON") from None


def _workload_status(resource: str, replicas: int) -> Json:
    if resource == "daemonsets":
        return {
            "currentNumberScheduled": 1,
            "desiredNumberScheduled": 1,
            "numberAvailable": 1,
            "numberMisscheduled": 0,
            "numberReady": 1,
            "observedGeneration": 1,
            "updatedNumberScheduled": 1,
        }
    return {"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas}


def _check_eviction(body: Any, ns: str, name: str) -> None:
    """The policy/v1 Eviction the subresource requires: names must agree with the URL."""
    if (
        not isinstance(body, dict)
        or body.get("apiVersion") != "policy/v1"
        or body.get("kind") != "Eviction"
    ):
        raise ApiError(400, "fake apiserver: the body must be a policy/v1 Eviction")
    unknown = set(body) - {"apiVersion", "kind", "metadata", "deleteOptions"}
    if unknown:
        raise ApiError(400, f'strict decoding error: unknown field "{sorted(unknown)[0]}"')
    meta = body.get("metadata") or {}
    if meta.get("name") != name:
        raise ApiError(400, "name in URL does not match name in Eviction object")
    if meta.get("namespace", ns) != ns:
        raise ApiError(
            400,
            "the namespace of the provided object does not match the namespace sent on the request",
        )


def _invalid(kind: str, name: str, details: str) -> ApiError:
    return ApiError(422, f'{kind} "{name}" is invalid: {details}')


def _validate_workload(old: Json, new: Json) -> None:
    kind, name = f"{old['kind']}.apps", old["metadata"]["name"]
    spec = new.get("spec") or {}
    if spec.get("selector") != old["spec"]["selector"]:
        raise _invalid(
            kind,
            name,
            f"spec.selector: Invalid value: {json.dumps(spec.get('selector'))}: field is immutable",
        )
    replicas = spec.get("replicas", 0)
    if not isinstance(replicas, int) or replicas < 0:
        raise _invalid(
            kind,
            name,
            f"spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0",
        )
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in spec["selector"]["matchLabels"].items()):
        raise _invalid(
            kind,
            name,
            "spec.template.metadata.labels: Invalid value: "
            "`selector` does not match template `labels`",
        )
    _validate_containers(kind, name, (template.get("spec") or {}).get("containers"))


def _validate_containers(kind: str, name: str, containers: Any) -> None:
    if not containers:
        raise _invalid(kind, name, "spec.template.spec.containers: Required value")
    for index, container in enumerate(containers):
        for required in ("name", "image"):
            if not container.get(required):
                raise _invalid(
                    kind, name, f"spec.template.spec.containers[{index}].{required}: Required value"
                )
        for env in container.get("env", []):
            if not env.get("name"):
                raise _invalid(
                    kind, name, f"spec.template.spec.containers[{index}].env[].name: Required value"
                )


def _validate_job(name: str, spec: Any) -> None:
    pod = ((spec or {}).get("template") or {}).get("spec") or {}
    if pod.get("restartPolicy") not in ("Never", "OnFailure"):
        raise _invalid(
            "Job.batch",
            name,
            'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"',
        )
    _validate_containers("Job.batch", name, pod.get("containers"))
