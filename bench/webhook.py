"""Drive a real remediator over loopback and report alerts/s, latency and memory.

    python -m bench.webhook [--duration S] [--concurrency N] [--rate ALERTS_PER_S] ...

Starts `remediator serve` as a subprocess on a free 127.0.0.1 port with a fresh database,
waits for /readyz, then runs three phases, each bounded in time and in count:

1. throughput: N closed-loop senders post realistic Alertmanager webhooks for D seconds;
2. latency: an open loop posts on a fixed timeline at a target alerts/s, each request's
   latency measured from its *scheduled* send time (no coordinated omission);
3. memory: distinct firing alerts that match no rule (one incident each) grow the stored
   incidents to --incidents; the server's VmRSS/VmHWM and the database size are read.

Every body is generated (orjson bytes) before its phase's clock starts. Afterwards, with the
server stopped, bench.playbook_latency times a webhook to a playbook's first effect against
the bare playbook (--playbook-runs pairs; 0 skips it). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

REPO = Path(__file__).resolve().parent.parent
RULES_DIR = REPO / "rules"
WEBHOOK = "/api/v1/webhooks/alertmanager"
# What Alertmanager 0.25 sends (shared/fixtures/alertmanager-0.25/request-headers.json).
HEADERS = {"Content-Type": "application/json", "User-Agent": "Alertmanager/0.25.0"}
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
DURATION_METRIC = "remediator_webhook_request_duration_seconds"

TARGET_ALERTS_PER_S = 5_000.0
TARGET_P99_S = 0.050
TARGET_RSS_MIB = 150.0
MIB = 1024 * 1024

# Bodies pre-generated for the throughput phase: enough for this many alerts/s over the
# whole duration. A faster service ends the phase early on count (the summary says so).
THROUGHPUT_BODY_BUDGET_PER_S = 10_000
# The open loop keeps at most this many requests in flight; later ones wait in the
# client, and that wait counts in their latency (measured from the scheduled time).
OPEN_LOOP_MAX_IN_FLIGHT = 100
DRAIN_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
MEMORY_BATCH = 100
DUPLICATE_RING = 64
MAX_BATCH = 100
# P(n alerts in a notification) ~ n^-1.2 for n in 1..100: mean ~13.7, median 4,
# 28% single alerts, 8% over 50 -- most Alertmanager groups are small.
BATCH_EXPONENT = 1.2

# -- the traffic --------------------------------------------------------------------------

# The shipped rules (rules/kubernetes.yml, rules/node.yml) match these two alertnames.
CRASHLOOP_SERVICES = (
    "checkout", "cart", "payments", "search", "catalog", "auth", "accounts", "orders",
    "shipping", "inventory", "pricing", "recommendations", "reviews", "notifications",
    "email", "gateway", "frontend", "admin", "billing", "invoices", "media", "profile",
    "sessions", "wishlist",
)  # fmt: skip
DISK_POOLS = (
    "storage", "postgres", "kafka", "elasticsearch", "redis", "minio", "etcd", "loki",
    "prometheus", "clickhouse", "mongodb", "builds",
)  # fmt: skip
# Realistic kube-prometheus alerts that no shipped rule matches: incidents kept for a human.
UNMATCHED = (
    ("KubeDeploymentReplicasMismatch", "checkout", "warning"),
    ("KubeContainerWaiting", "payments", "warning"),
    ("TargetDown", "gateway", "warning"),
    ("KubeHpaMaxedOut", "frontend", "warning"),
    ("CPUThrottlingHigh", "search", "info"),
    ("KubeJobFailed", "billing", "warning"),
    ("NodeMemoryHighUtilization", "nodes", "warning"),
    ("KubePersistentVolumeFillingUp", "postgres", "critical"),
    ("HighRequestLatency", "orders", "critical"),
    ("KubeStatefulSetReplicasMismatch", "kafka", "warning"),
    ("NodeFilesystemAlmostOutOfFiles", "nodes", "warning"),
    ("PrometheusRuleFailures", "monitoring", "critical"),
    ("KubeAPIErrorBudgetBurn", "kube-apiserver", "critical"),
    ("CertificateExpiringSoon", "ingress", "warning"),
)
# Phase 3's alerts: no shipped rule matches them, so each fingerprint is its own incident.
MEMORY_ALERTNAMES = (
    "KubeContainerWaiting",
    "TargetDown",
    "KubePodNotReady",
    "NodeNetworkReceiveErrs",
)
NAMESPACES = ("shop", "platform", "data", "edge")
MOUNTPOINTS = ("/", "/var/lib/data", "/var/log", "/var/lib/containerd")


@dataclass(frozen=True, slots=True)
class Body:
    """One webhook request body, ready to send."""

    data: bytes
    alerts: int
    duplicate: bool


@dataclass(slots=True)
class _Series:
    """One alert series (one fingerprint) and its current state at the source."""

    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str
    nanos: bool  # Prometheus sends fractional seconds; amtool does not
    status: str | None = None
    starts_at: str = ""
    ends_at: str = GO_ZERO_TIME


@dataclass(slots=True)
class _Group:
    """One Alertmanager aggregation group (group_by: [alertname, service])."""

    alertname: str
    service: str
    matched: bool
    series: list[_Series]


def _rfc3339(ns: int, nanos: bool) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    fraction = f".{frac:09d}".rstrip("0") if nanos and frac else ""
    return f"{text}{fraction if fraction != '.' else ''}Z"


class Traffic:
    """Deterministic, stateful Alertmanager traffic over a pool of alert series.

    A notification picks a group and 1-100 of its series; each picked series moves on:
    inactive or resolved -> firing with a new startsAt; firing -> resolved (half the
    time) or still firing (the same identity again, as group_interval repeats send it).
    A share of notifications is an exact copy of a recent one (HA pair, retries).
    """

    def __init__(self, pool: int, duplicate_share: float, seed: int) -> None:
        self.rng = random.Random(seed)
        self.duplicate_share = duplicate_share
        self._fingerprints: set[str] = set()
        self._clock_ns = time.time_ns() - 3_600 * 1_000_000_000
        self._recent: list[Body] = []
        self._sizes = list(range(1, MAX_BATCH + 1))
        self._size_weights = list(itertools.accumulate(n**-BATCH_EXPONENT for n in self._sizes))
        self.groups = self._make_groups(pool)
        self._memory_serial = 0

    # the pool

    def _fingerprint(self) -> str:
        while True:
            fingerprint = f"{self.rng.getrandbits(64):016x}"
            if fingerprint not in self._fingerprints:
                self._fingerprints.add(fingerprint)
                return fingerprint

    def _make_groups(self, pool: int) -> list[_Group]:
        specs: list[tuple[str, str, bool, str]] = [
            ("KubePodCrashLooping", s, True, "warning") for s in CRASHLOOP_SERVICES
        ]
        specs += [("NodeFilesystemSpaceFillingUp", p, True, "critical") for p in DISK_POOLS]
        specs += [(name, service, False, sev) for name, service, sev in UNMATCHED]
        groups = []
        for index, (alertname, service, matched, severity) in enumerate(specs):
            size = pool // len(specs) + (1 if index < pool % len(specs) else 0)
            series = [self._series(alertname, service, severity, i) for i in range(size)]
            groups.append(_Group(alertname, service, matched, series))
        return groups

    def _series(self, alertname: str, service: str, severity: str, i: int) -> _Series:
        rng = self.rng
        namespace = NAMESPACES[zlib.crc32(service.encode()) % len(NAMESPACES)]
        expr = f"g0.expr=ALERTS%7Balertname%3D%22{alertname}%22%7D&g0.tab=1"
        prometheus_url = f"http://prometheus:9090/graph?{expr}"
        if alertname == "KubePodCrashLooping":
            pod = f"{service}-{rng.getrandbits(28):07x}-{i:05d}"
            labels = {
                "alertname": alertname,
                "container": rng.choice(("app", "app", "app", "sidecar")),
                "namespace": namespace,
                "pod": pod,
                "service": service,
                "severity": severity,
            }
            annotations = {"summary": f"Pod {namespace}/{pod} is crash looping"}
            if rng.random() < 0.5:
                annotations["runbook_url"] = "https://runbooks.example.com/crashloop"
        elif alertname == "NodeFilesystemSpaceFillingUp":
            instance = f"{service}-{i // len(MOUNTPOINTS)}:9100"
            mountpoint = MOUNTPOINTS[i % len(MOUNTPOINTS)]
            labels = {
                "alertname": alertname,
                "device": "/dev/nvme0n1p1",
                "fstype": "ext4",
                "instance": instance,
                "job": "node-exporter",
                "mountpoint": mountpoint,
                "service": service,
                "severity": severity,
            }
            annotations = {
                "description": f"Filesystem {mountpoint} on {instance} is predicted to fill.",
                "runbook_url": "https://runbooks.example.com/disk-full",
                "summary": f"Disk {mountpoint} on {instance} will fill within 4 hours",
            }
        else:
            target = f"{service}-{i:05d}"
            octet = zlib.crc32(service.encode()) % 250
            labels = {
                "alertname": alertname,
                "instance": f"10.{i // 250 % 256}.{i % 250}.{octet}:8080",
                "job": service,
                "namespace": namespace,
                "pod": target,
                "service": service,
                "severity": severity,
            }
            annotations = {"summary": f"{alertname} on {target}"}
        from_prometheus = rng.random() < 0.9
        return _Series(
            fingerprint=self._fingerprint(),
            labels=labels,
            annotations=annotations,
            generator_url=prometheus_url if from_prometheus else "",
            nanos=from_prometheus,
        )

    @property
    def pool_size(self) -> int:
        return sum(len(g.series) for g in self.groups)

    @property
    def matched_share(self) -> float:
        return sum(len(g.series) for g in self.groups if g.matched) / max(1, self.pool_size)

    # notifications

    def _tick(self) -> None:
        self._clock_ns += self.rng.randint(1_000_000, 80_000_000)

    def _advance(self, series: _Series) -> dict[str, Any]:
        now = self._clock_ns + self.rng.randint(0, 999_999_999)
        if series.status == "firing" and self.rng.random() < 0.5:
            series.status = "resolved"
            series.ends_at = _rfc3339(now, series.nanos)
        elif series.status != "firing":
            series.status = "firing"
            series.starts_at = _rfc3339(now, series.nanos)
            series.ends_at = GO_ZERO_TIME
        return {
            "status": series.status,
            "labels": series.labels,
            "annotations": series.annotations,
            "startsAt": series.starts_at,
            "endsAt": series.ends_at,
            "generatorURL": series.generator_url,
            "fingerprint": series.fingerprint,
        }

    def _batch_size(self) -> int:
        return self.rng.choices(self._sizes, cum_weights=self._size_weights)[0]

    def next_body(self) -> Body:
        """The next notification: a fresh one, or an exact re-delivery of a recent one."""
        if self._recent and self.rng.random() < self.duplicate_share:
            original = self.rng.choice(self._recent)
            return Body(original.data, original.alerts, duplicate=True)
        self._tick()
        group = self.rng.choice(self.groups)
        picked = self.rng.sample(group.series, min(self._batch_size(), len(group.series)))
        alerts = [self._advance(s) for s in picked]
        body = Body(_encode(group.alertname, group.service, alerts), len(alerts), False)
        self._recent.append(body)
        if len(self._recent) > DUPLICATE_RING:
            self._recent.pop(0)
        return body

    def bodies(self, alerts: int) -> list[Body]:
        """Notifications carrying at least `alerts` alerts in all."""
        out: list[Body] = []
        total = 0
        while total < alerts:
            body = self.next_body()
            out.append(body)
            total += body.alerts
        return out

    def memory_bodies(self, alerts: int) -> list[Body]:
        """`alerts` new, distinct, firing alerts that no rule matches, 100 per body."""
        out: list[Body] = []
        for start in range(0, alerts, MEMORY_BATCH):
            count = min(MEMORY_BATCH, alerts - start)
            self._tick()
            alertname = MEMORY_ALERTNAMES[len(out) % len(MEMORY_ALERTNAMES)]
            service = f"fleet-{len(out) % 97:02d}"
            batch = []
            for _ in range(count):
                self._memory_serial += 1
                pod = f"{service}-{self._memory_serial:07d}"
                series = _Series(
                    fingerprint=self._fingerprint(),
                    labels={
                        "alertname": alertname,
                        "namespace": "fleet",
                        "pod": pod,
                        "service": service,
                        "severity": "warning",
                    },
                    annotations={"summary": f"{alertname} on fleet/{pod}"},
                    generator_url="http://prometheus:9090/graph?g0.expr=up&g0.tab=1",
                    nanos=True,
                )
                batch.append(self._advance(series))
            out.append(Body(_encode(alertname, service, batch), count, False))
        return out


def _encode(alertname: str, service: str, alerts: list[dict[str, Any]]) -> bytes:
    common = dict(alerts[0]["labels"])
    for alert in alerts[1:]:
        labels = alert["labels"]
        for key in [k for k, v in common.items() if labels.get(k) != v]:
            del common[key]
    common_annotations = dict(alerts[0]["annotations"]) if len(alerts) == 1 else {}
    firing = any(a["status"] == "firing" for a in alerts)
    return orjson.dumps(
        {
            "receiver": "remediator",
            "status": "firing" if firing else "resolved",
            "alerts": alerts,
            "groupLabels": {"alertname": alertname, "service": service},
            "commonLabels": common,
            "commonAnnotations": common_annotations,
            "externalURL": "http://alertmanager:9093",
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{alertname}", service="{service}"}}',
            "truncatedAlerts": 0,
        }
    )


# -- measuring ----------------------------------------------------------------------------


@dataclass(slots=True)
class PhaseStats:
    """What the client saw in one phase, plus the server's side of it."""

    name: str
    elapsed: float = 0.0
    requests: int = 0
    bodies_available: int = 0
    alerts_sent: int = 0
    alerts_ok: int = 0
    duplicate_bodies: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    error_samples: dict[str, str] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    reply_totals: Counter[str] = field(default_factory=Counter)
    ended_by: str = "time"
    dispatch_lag_max: float = 0.0
    max_in_flight: int = 0
    server_cpu_s: float = 0.0
    server_main_thread_cpu_s: float = 0.0
    bench_cpu_s: float = 0.0
    rss_peak: int = 0
    hwm_after: int = 0
    server: dict[str, float] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if not status.startswith("2"))

    def record(self, status: str, latency: float, body: Body, reply: bytes) -> None:
        self.requests += 1
        self.alerts_sent += body.alerts
        self.duplicate_bodies += body.duplicate
        self.latencies.append(latency)
        if status.startswith("2"):
            try:
                answer = orjson.loads(reply)
                for key in ("received", "stored", "duplicates"):
                    self.reply_totals[key] += int(answer[key])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                status = f"bad-reply-{status}"
            else:
                if answer["received"] != body.alerts:
                    status = f"wrong-received-count-{status}"
        if status.startswith("2"):
            self.alerts_ok += body.alerts
        elif status not in self.error_samples:
            self.error_samples[status] = reply[:300].decode("utf-8", "replace")
        self.statuses[status] += 1


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    rank = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[rank]


async def _post(
    session: aiohttp.ClientSession, url: str, body: Body, scheduled: float, stats: PhaseStats
) -> None:
    loop = asyncio.get_running_loop()
    try:
        async with session.post(url, data=body.data, headers=HEADERS) as response:
            reply = await response.read()
            status = str(response.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        stats.record(type(exc).__name__, loop.time() - scheduled, body, str(exc).encode())
        return
    stats.record(status, loop.time() - scheduled, body, reply)


async def closed_loop(
    session: aiohttp.ClientSession,
    url: str,
    bodies: Sequence[Body],
    concurrency: int,
    duration: float,
    stats: PhaseStats,
) -> None:
    """`concurrency` senders, each posting the next body as soon as its last one returned."""
    loop = asyncio.get_running_loop()
    cursor = iter(bodies)
    start = loop.time()
    deadline = start + duration
    stats.bodies_available = len(bodies)

    async def sender() -> None:
        while loop.time() < deadline:
            body = next(cursor, None)
            if body is None:
                stats.ended_by = "count"
                return
            await _post(session, url, body, loop.time(), stats)

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    stats.elapsed = loop.time() - start


async def open_loop(
    session: aiohttp.ClientSession,
    url: str,
    bodies: Sequence[Body],
    rate: float,
    duration: float,
    stats: PhaseStats,
) -> None:
    """Post each body at its place on a fixed timeline (alerts / rate), never waiting."""
    loop = asyncio.get_running_loop()
    in_flight: set[asyncio.Task[None]] = set()
    start = loop.time() + 0.05
    end = start + duration
    offset = 0.0
    stats.bodies_available = len(bodies)
    stats.ended_by = "count"
    for body in bodies:
        scheduled = start + offset
        if scheduled >= end:
            stats.ended_by = "time"
            break
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        stats.dispatch_lag_max = max(stats.dispatch_lag_max, loop.time() - scheduled)
        task = asyncio.create_task(_post(session, url, body, scheduled, stats))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        stats.max_in_flight = max(stats.max_in_flight, len(in_flight))
        offset += body.alerts / rate
    try:
        if in_flight:
            _, pending = await asyncio.wait(set(in_flight), timeout=DRAIN_TIMEOUT_S)
            if pending:
                stats.statuses["unfinished-after-drain"] += len(pending)
    finally:
        for task in list(in_flight):
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
    stats.elapsed = loop.time() - start


# -- the server process -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, ... of a process, in bytes."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key.startswith("Vm") and value.strip().endswith("kB"):
                out[key] = int(value.split()[0]) * 1024
    return out


def _proc_cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU time of a process (all its threads), or of one of its threads."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    with open(path) as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Server:
    """`remediator serve` in a subprocess of its own session, stopped with SIGTERM."""

    def __init__(self, workdir: Path, database_url: str, profile: Path | None) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "remediator.yml"
        self.log = workdir / "server.log"
        self.config.write_text(
            "\n".join(
                [
                    f'listen: "127.0.0.1:{self.port}"',
                    f"database_url: {json.dumps(database_url)}",
                    f"rules: [{json.dumps(str(RULES_DIR) + '/')}]",
                    "log_level: warning",
                    # Intake only: the shipped rules' jobs (playbooks, cluster calls) are
                    # queued in the database and never run, so the bench touches no hosts.
                    "remediation: {workers: 0}",
                    "",
                ]
            )
        )
        script = Path(sys.executable).parent / "remediator"
        serve = ["serve", "--config", str(self.config)]
        if profile is not None:
            prefix = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m"]
            self.argv = [*prefix, "remediator.cli", *serve]
        elif script.exists():
            self.argv = [str(script), *serve]
        else:
            self.argv = [sys.executable, "-m", "remediator.cli", *serve]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REMEDIATOR_")}
        with open(self.log, "wb") as log:
            # A session of its own: Ctrl-C reaches only the bench, which stops the server.
            self.process = subprocess.Popen(
                self.argv,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_ready(self, session: aiohttp.ClientSession) -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while loop.time() - started < READY_TIMEOUT_S:
            if self.process is None or self.process.poll() is not None:
                raise BenchError(f"the server exited during startup\n{self.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(self.base + "/readyz") as response:
                    await response.read()
                    if response.status == 200:
                        return loop.time() - started
            await asyncio.sleep(0.1)
        raise BenchError(f"/readyz not 200 within {READY_TIMEOUT_S:.0f} s\n{self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM (graceful: in-flight requests finish, the database closes), then SIGKILL."""
        process = self.process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "\n".join(f"  server| {line}" for line in text[-lines:])

    def log_lines(self) -> int:
        try:
            with open(self.log, "rb") as log:
                return sum(1 for _ in log)
        except OSError:
            return 0


class BenchError(Exception):
    """The benchmark could not run (the server failed to start, a database is not fresh)."""


class RssSampler:
    """Samples the server's VmRSS a few times a second; the kernel keeps VmHWM itself."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.window_peak = 0

    def sample(self) -> dict[str, int]:
        status = _proc_status(self.pid)
        self.window_peak = max(self.window_peak, status.get("VmRSS", 0))
        return status

    async def run(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.sample()
                await asyncio.sleep(self.interval)

    def take_window_peak(self) -> int:
        peak, self.window_peak = self.window_peak, 0
        return peak


def _parse_metrics(text: str) -> dict[str, float]:
    series: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        with contextlib.suppress(ValueError):
            series[name] = float(value)
    return series


async def scrape(session: aiohttp.ClientSession, base: str) -> dict[str, float]:
    async with session.get(base + "/metrics") as response:
        return _parse_metrics(await response.text())


def _sum(metrics: dict[str, float], name: str) -> float:
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


_LE = re.compile(r'le="([^"]+)"')


def server_side(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """The server's own view of a phase, from /metrics deltas."""
    out = {
        name: _sum(after, metric) - _sum(before, metric)
        for name, metric in (
            ("alerts_received", "remediator_alerts_received_total"),
            ("alerts_duplicate", "remediator_alerts_duplicate_total"),
            ("alerts_stale", "remediator_alerts_stale_total"),
            ("incidents_opened", "remediator_incidents_opened_total"),
            ("rule_matches", "remediator_rule_matches_total"),
            ("commits", "remediator_intake_commit_alerts_count"),
            ("committed_alerts", "remediator_intake_commit_alerts_sum"),
            ("requests", f"{DURATION_METRIC}_count"),
            ("duration_sum", f"{DURATION_METRIC}_sum"),
        )
    }
    buckets = sorted(
        (float(m.group(1)), after[k] - before.get(k, 0.0))
        for k in after
        if k.startswith(f"{DURATION_METRIC}_bucket") and (m := _LE.search(k))
    )
    for q in (0.5, 0.99):
        out[f"p{round(q * 100)}"] = _histogram_quantile(q, buckets)
    return out


def _histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile: linear within the bucket holding the rank."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            width = count - lower_count
            fraction = (rank - lower_count) / width if width else 1.0
            return lower_bound + (bound - lower_bound) * fraction
        lower_bound, lower_count = bound, count
    return math.nan


# -- the database -------------------------------------------------------------------------


class Store:
    """The fresh database the server writes to, and a way to count what it holds."""

    def __init__(self, database_url: str | None, workdir: Path) -> None:
        self.admin_url: str | None = None
        self.pg_name: str | None = None
        self.sqlite_path: Path | None = None
        if database_url is None:
            self.sqlite_path = workdir / "bench.db"
            self.url = f"sqlite+aiosqlite:///{self.sqlite_path}"
        elif database_url.startswith("sqlite"):
            path = database_url.split(":///", 1)[1] if ":///" in database_url else ""
            if not path or Path(path).exists():
                raise BenchError(f"{database_url}: give the path of a database that does not exist")
            self.sqlite_path = Path(path)
            self.url = database_url
        elif database_url.startswith("postgresql"):
            self.admin_url = database_url
            self.pg_name = f"remediator_bench_{uuid.uuid4().hex[:10]}"
            self.url = _with_database(database_url, self.pg_name)
        else:
            raise BenchError(f"{database_url}: only sqlite and postgresql URLs are supported")

    @property
    def description(self) -> str:
        if self.sqlite_path is not None:
            return f"SQLite {self.sqlite_path} (WAL, synchronous=FULL)"
        return f"PostgreSQL database {self.pg_name} created for this run, then dropped"

    async def create(self) -> None:
        if self.admin_url is not None:
            await _pg_execute(self.admin_url, f'CREATE DATABASE "{self.pg_name}"')

    async def drop(self) -> None:
        if self.admin_url is not None:
            await _pg_execute(
                self.admin_url, f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)'
            )

    async def count_incidents(self) -> int:
        if self.sqlite_path is not None:
            uri = f"file:{self.sqlite_path}?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
                row = conn.execute("SELECT count(*) FROM incidents").fetchone()
                return int(row[0])
        return int(await _pg_scalar(self.url, "SELECT count(*) FROM incidents"))

    async def size_bytes(self) -> dict[str, int]:
        if self.sqlite_path is not None:
            return _sqlite_sizes(self.sqlite_path)
        return {
            "db": int(await _pg_scalar(self.url, "SELECT pg_database_size(current_database())"))
        }


def _sqlite_sizes(path: Path) -> dict[str, int]:
    sizes = {}
    for key, suffix in (("db", ""), ("db_wal", "-wal")):
        file = Path(f"{path}{suffix}")
        sizes[key] = file.stat().st_size if file.exists() else 0
    return sizes


def _with_database(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _pg_execute(url: str, statement: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _pg_scalar(url: str, query: str) -> Any:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(query))).scalar_one()
    finally:
        await engine.dispose()


# -- the run ------------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    args: argparse.Namespace
    command: str
    store_description: str = ""
    startup_s: float = 0.0
    loadavg_before: str = ""
    loadavg_after: str = ""
    pool: int = 0
    matched_share: float = 0.0
    phases: dict[str, PhaseStats] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    server_log_lines: int = 0
    server_exit: int | None = None
    notes: list[str] = field(default_factory=list)


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _session(limit: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
    )


async def _phase(
    run: Run,
    server: Server,
    sampler: RssSampler,
    stats: PhaseStats,
    work: Coroutine[Any, Any, None],
) -> PhaseStats:
    """Run one phase's coroutine with CPU, RSS and /metrics accounting around it."""
    async with _session(4) as ops:
        before = await scrape(ops, server.base)
        sampler.take_window_peak()
        server_cpu, bench_cpu = _proc_cpu_seconds(server.pid), _own_cpu_seconds()
        main_thread_cpu = _proc_cpu_seconds(server.pid, server.pid)
        await work
        stats.server_cpu_s = _proc_cpu_seconds(server.pid) - server_cpu
        stats.server_main_thread_cpu_s = _proc_cpu_seconds(server.pid, server.pid) - main_thread_cpu
        stats.bench_cpu_s = _own_cpu_seconds() - bench_cpu
        sampler.sample()
        stats.rss_peak = sampler.take_window_peak()
        stats.hwm_after = _proc_status(server.pid).get("VmHWM", 0)
        stats.server = server_side(before, await scrape(ops, server.base))
    run.phases[stats.name] = stats
    if stats.errors:
        _progress(f"!!! {stats.name}: {stats.errors} FAILED REQUESTS: {dict(stats.statuses)}")
    return stats


async def bench(run: Run) -> None:
    args = run.args
    workdir = Path(tempfile.mkdtemp(prefix="remediator-bench-"))
    try:
        store = Store(args.database_url, workdir)
    except BenchError:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    run.store_description = store.description
    server: Server | None = None
    sampler_task: asyncio.Task[None] | None = None
    created = False
    try:
        await store.create()
        created = True
        server = Server(workdir, store.url, args.profile_server)
        traffic = Traffic(args.fingerprints, args.duplicates, args.seed)
        run.pool, run.matched_share = traffic.pool_size, traffic.matched_share
        url = server.base + WEBHOOK
        _progress(f"starting: {shlex.join(server.argv)}")
        server.start()
        async with _session(4) as ops:
            run.startup_s = await server.wait_ready(ops)
        _progress(f"ready in {run.startup_s:.1f} s on {server.base} (pid {server.pid})")
        run.memory["rss_ready"] = _proc_status(server.pid).get("VmRSS", 0)
        sampler = RssSampler(server.pid)
        sampler_task = asyncio.create_task(sampler.run())

        # Warm-up (not reported): connections, SQLite page cache, first-time imports.
        warmup = traffic.bodies(2_000)
        async with _session(args.concurrency) as session:
            await closed_loop(session, url, warmup, args.concurrency, 3.0, PhaseStats("warmup"))

        budget = int(args.duration * THROUGHPUT_BODY_BUDGET_PER_S)
        bodies = traffic.bodies(budget)
        _progress(
            f"phase 1 throughput: {args.concurrency} senders, {args.duration:g} s "
            f"({len(bodies):,} bodies, {sum(b.alerts for b in bodies):,} alerts ready)"
        )
        async with _session(args.concurrency) as session:
            stats = PhaseStats("throughput")
            work = closed_loop(session, url, bodies, args.concurrency, args.duration, stats)
            await _phase(run, server, sampler, stats, work)
        del bodies
        _progress(f"  {stats.alerts_ok / stats.elapsed:,.0f} alerts/s, {stats.errors} errors")
        await asyncio.sleep(1.0)

        bodies = traffic.bodies(int(args.rate * args.duration) + MAX_BATCH)
        _progress(
            f"phase 2 latency: open loop at {args.rate:,.0f} alerts/s for {args.duration:g} s"
        )
        async with _session(OPEN_LOOP_MAX_IN_FLIGHT) as session:
            stats = PhaseStats("latency")
            work = open_loop(session, url, bodies, args.rate, args.duration, stats)
            await _phase(run, server, sampler, stats, work)
        del bodies
        latencies = sorted(stats.latencies)
        _progress(f"  p99 {_percentile(latencies, 0.99) * 1000:.1f} ms, {stats.errors} errors")

        run.memory["hwm_phases_1_2"] = _proc_status(server.pid).get("VmHWM", 0)
        run.memory["rss_after_phases_1_2"] = _proc_status(server.pid).get("VmRSS", 0)
        if not args.skip_memory:
            await _memory_phase(run, server, sampler, store, traffic, url)
        run.memory["hwm_run"] = _proc_status(server.pid).get("VmHWM", 0)
    finally:
        if sampler_task is not None:
            sampler_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler_task
        if server is not None:
            run.server_exit = server.stop()
            run.server_log_lines = server.log_lines()
            if run.server_exit not in (0, None):
                run.notes.append(f"server exited with {run.server_exit}:\n{server.log_tail()}")
        try:
            if server is not None and not args.skip_memory and "incidents_target" in run.memory:
                # After a clean stop the WAL is checkpointed into the main file.
                run.memory["incidents_final"] = await store.count_incidents()
                run.memory["db_after_stop"] = await store.size_bytes()
        finally:
            if created:
                await store.drop()
            if args.keep:
                _progress(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)


async def _memory_phase(
    run: Run, server: Server, sampler: RssSampler, store: Store, traffic: Traffic, url: str
) -> None:
    args = run.args
    existing = await store.count_incidents()
    missing = max(0, args.incidents - existing)
    run.memory.update(incidents_target=args.incidents, incidents_before=existing)
    bodies = traffic.memory_bodies(missing)
    _progress(
        f"phase 3 memory: {existing:,} incidents stored; adding {missing:,} distinct firing "
        f"alerts that match no rule, {MEMORY_BATCH} per request"
    )
    async with _session(args.concurrency) as session:
        stats = PhaseStats("memory")
        if not bodies:
            run.notes.append(f"phases 1-2 already stored {existing:,} incidents; none added")
        work = closed_loop(session, url, bodies, args.concurrency, args.memory_timeout, stats)
        await _phase(run, server, sampler, stats, work)
    await asyncio.sleep(1.0)
    status = _proc_status(server.pid)
    run.memory.update(
        incidents_stored=await store.count_incidents(),
        rss=status.get("VmRSS", 0),
        hwm=status.get("VmHWM", 0),
        db=await store.size_bytes(),
    )


# -- the report ---------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def _mib(n: int) -> str:
    return f"{n / MIB:.1f} MiB"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def summarize(run: Run) -> tuple[str, dict[str, Any]]:
    """The table for people and the same numbers for machines."""
    args = run.args
    lines: list[str] = []
    data: dict[str, Any] = {
        "command": run.command,
        "machine": {
            "nproc": os.cpu_count(),
            "sched_affinity": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "loadavg_before": run.loadavg_before,
            "loadavg_after": run.loadavg_after,
        },
        "database": run.store_description,
        "traffic": {
            "fingerprints": run.pool,
            "groups": len(CRASHLOOP_SERVICES) + len(DISK_POOLS) + len(UNMATCHED),
            "matched_share": round(run.matched_share, 3),
            "duplicate_share": args.duplicates,
            "seed": args.seed,
        },
        "targets": {
            "alerts_per_s": TARGET_ALERTS_PER_S,
            "p99_ms_at_rate": TARGET_P99_S * 1000,
            "rss_mib_at_incidents": TARGET_RSS_MIB,
        },
        "phases": {},
        "memory": {},
        "notes": run.notes,
    }
    row = "  {:<38}{:<46}{:<14}{}"

    def add(metric: str, measured: str, target: str = "", verdict: str = "") -> None:
        lines.append(row.format(metric, measured, target, verdict).rstrip())

    lines += [
        "",
        "=" * 104,
        "remediator webhook benchmark",
        f"command  : {run.command}",
        f"machine  : nproc {len(os.sched_getaffinity(0))}, {platform.platform()}, "
        f"{platform.python_implementation()} {platform.python_version()}",
        f"load avg : {run.loadavg_before} before, {run.loadavg_after} after (1/5/15 min)",
        f"database : {run.store_description}",
        f"rules    : {RULES_DIR}/ (shipped)",
        f"traffic  : {run.pool:,} fingerprints in {data['traffic']['groups']} groups "
        f"({run.matched_share:.0%} match a shipped rule), 1-{MAX_BATCH} alerts per body "
        f"(P(n)~n^-{BATCH_EXPONENT}), {args.duplicates:.0%} exact duplicate bodies, "
        f"seed {args.seed}",
        f"startup  : /readyz after {run.startup_s:.1f} s",
        "-" * 104,
        row.format("", "measured", "target", "").rstrip(),
    ]
    failed = False
    for stats in run.phases.values():
        latencies = sorted(stats.latencies)
        elapsed = max(stats.elapsed, 1e-9)
        s = stats.server
        phase_data: dict[str, Any] = {
            "elapsed_s": round(stats.elapsed, 3),
            "ended_by": stats.ended_by,
            "requests": stats.requests,
            "alerts_sent": stats.alerts_sent,
            "alerts_ok": stats.alerts_ok,
            "alerts_per_s": stats.alerts_ok / elapsed,
            "requests_per_s": stats.requests / elapsed,
            "duplicate_bodies": stats.duplicate_bodies,
            "statuses": dict(stats.statuses),
            "errors": stats.errors,
            "error_samples": stats.error_samples,
            "latency_ms": {f"p{q}": _percentile(latencies, q / 100) * 1000 for q in (50, 90, 99)}
            | {"max": (latencies[-1] * 1000) if latencies else math.nan},
            "replies": dict(stats.reply_totals),
            "server_cpu_pct": 100 * stats.server_cpu_s / elapsed,
            "server_main_thread_cpu_pct": 100 * stats.server_main_thread_cpu_s / elapsed,
            "bench_cpu_pct": 100 * stats.bench_cpu_s / elapsed,
            "server_rss_peak": stats.rss_peak,
            "server_vmhwm_after": stats.hwm_after,
            "server_metrics": s,
        }
        data["phases"][stats.name] = phase_data
        failed |= stats.errors > 0
        lat = phase_data["latency_ms"]
        lat_text = f"{lat['p50']:.1f} / {lat['p90']:.1f} / {lat['p99']:.1f} / {lat['max']:.1f} ms"
        lines.append("")
        if stats.name == "throughput":
            lines.append(
                f"1. throughput: closed loop, {args.concurrency} senders, {stats.elapsed:.1f} s"
                f" (ended by {stats.ended_by})"
            )
            rate = stats.alerts_ok / elapsed
            ok = rate >= TARGET_ALERTS_PER_S
            phase_data["pass"] = ok
            add(
                "alerts/s sustained (2xx)",
                f"{rate:,.0f}",
                f">= {TARGET_ALERTS_PER_S:,.0f}",
                _verdict(ok),
            )
            add("requests/s", f"{stats.requests / elapsed:,.0f} ({stats.requests:,} requests)")
        elif stats.name == "latency":
            lines.append(
                f"2. latency: open loop, {args.rate:,.0f} alerts/s on a fixed timeline, "
                f"{stats.elapsed:.1f} s (ended by {stats.ended_by})"
            )
            p99 = lat["p99"] / 1000
            ok = p99 < TARGET_P99_S and stats.errors == 0
            phase_data["pass"] = ok
            add(
                "achieved",
                f"{stats.alerts_ok / elapsed:,.0f} alerts/s, {stats.requests / elapsed:,.1f} req/s",
            )
            add("p50 / p90 / p99 / max", lat_text)
            add("p99 (from scheduled send time)", _ms(p99), f"< {_ms(TARGET_P99_S)}", _verdict(ok))
            add(
                "client: max in flight / max lag",
                f"{stats.max_in_flight} / {_ms(stats.dispatch_lag_max)} (dispatch vs schedule)",
            )
        else:
            lines.append(
                f"3. memory: grow to {args.incidents:,} incidents, {MEMORY_BATCH} alerts per "
                f"request, {args.concurrency} senders, {stats.elapsed:.1f} s"
            )
            add(
                "alerts/s while growing",
                f"{stats.alerts_ok / elapsed:,.0f} ({stats.requests:,} requests)",
            )
        if stats.name != "latency":
            add("latency p50/p90/p99/max (closed)", lat_text)
        add(
            "errors (non-2xx or failed)",
            f"{stats.errors:,}" + (f"  !!! {dict(stats.statuses)}" if stats.errors else ""),
            "0",
            _verdict(stats.errors == 0),
        )
        for status, sample in stats.error_samples.items():
            lines.append(f"      !!! {status}: {sample!r}")
        add(
            "replies: received/stored/duplicate",
            f"{stats.reply_totals['received']:,} / {stats.reply_totals['stored']:,} / "
            f"{stats.reply_totals['duplicates']:,} alerts",
        )
        add(
            "server: incidents opened, commits",
            f"{s['incidents_opened']:,.0f} opened; {s['commits']:,.0f} commits, "
            f"{s['committed_alerts'] / max(1, s['commits']):,.1f} alerts/commit",
        )
        add(
            "server: handler time mean/p50/p99",
            f"{_ms(s['duration_sum'] / max(1, s['requests']))}"
            f" / ~{_ms(s['p50'])} / ~{_ms(s['p99'])} (/metrics histogram)",
        )
        add(
            "CPU: server (event loop) / bench",
            f"{phase_data['server_cpu_pct']:.0f}% ({phase_data['server_main_thread_cpu_pct']:.0f}%)"
            f" / {phase_data['bench_cpu_pct']:.0f}% of one core",
        )
        add("server RSS peak in phase", _mib(stats.rss_peak))

    memory = run.memory
    data["memory"] = memory
    lines.append("")
    lines.append("memory (server process, /proc/PID/status)")
    if "rss_ready" in memory:
        add("RSS when ready, before any traffic", _mib(memory["rss_ready"]))
    if "hwm_phases_1_2" in memory:
        add("peak RSS, phases 1-2 (VmHWM)", _mib(memory["hwm_phases_1_2"]))
    if "rss" in memory:
        stored = memory["incidents_stored"]
        final = memory.get("incidents_final", stored)
        counted_ok = final >= args.incidents
        failed |= not counted_ok
        ok = memory["rss"] < TARGET_RSS_MIB * MIB and counted_ok
        memory["pass"] = ok
        add(
            "incidents stored (SELECT count(*))",
            f"{final:,} (before phase 3: {memory['incidents_before']:,})",
            f">= {args.incidents:,}",
            _verdict(counted_ok),
        )
        add(
            f"RSS with {final:,} incidents",
            f"VmRSS {_mib(memory['rss'])}",
            f"< {TARGET_RSS_MIB:.0f} MiB",
            _verdict(ok),
        )
        add("", f"VmHWM {_mib(memory['hwm'])} (peak of the whole run)")
        db = memory["db"]
        size = f"{_mib(db['db'])}" + (f" + WAL {_mib(db['db_wal'])}" if "db_wal" in db else "")
        after = memory.get("db_after_stop")
        if after and run.store_description.startswith("SQLite"):
            size += f"; {_mib(after['db'])} after shutdown"
        add("database size", size)
    elif args.skip_memory:
        add("phase 3", "skipped (--skip-memory)")
    lines.append("")
    lines.append(
        f"server log: {run.server_log_lines:,} lines (log_level warning); "
        f"exit code {run.server_exit}"
    )
    for note in run.notes:
        lines.append(f"note: {note}")
    if failed:
        lines.append("!!! FAILED REQUESTS OR A WRONG INCIDENT COUNT: see above")
    lines.append("=" * 104)
    data["failed"] = failed
    return "\n".join(lines), data


def _finite(value: Any) -> Any:
    """JSON has no NaN: measurements that do not exist become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_json(destination: str | None, data: Any) -> None:
    """`--json FILE`: every number of the run, as JSON (`-`: standard output)."""
    if not destination:
        return
    text = json.dumps(_finite(data), indent=2, default=str)
    if destination == "-":
        print(text)
    else:
        Path(destination).write_text(text + "\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhook",
        description="Benchmark a real remediator over loopback: throughput, latency, memory.",
    )
    parser.add_argument(
        "--duration", type=float, default=20.0, help="seconds of phases 1 and 2 each (default 20)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="closed-loop senders in phases 1 and 3 (default 8)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=1000.0,
        help="alerts/s of the open loop in phase 2 (default 1000)",
    )
    parser.add_argument(
        "--incidents",
        type=int,
        default=100_000,
        help="incidents stored when memory is measured (default 100000)",
    )
    parser.add_argument("--skip-memory", action="store_true", help="skip phase 3")
    parser.add_argument(
        "--playbook-runs",
        type=int,
        default=5,
        help="then time webhook -> playbook effect vs bare ansible-playbook "
        "(bench.playbook_latency) with this many pairs; 0 skips it (default 5)",
    )
    parser.add_argument(
        "--escalation-incidents",
        type=int,
        default=50,
        help="then time a failed verification -> each channel's page and kill -9 a chain of "
        "1,000 incidents (bench.escalation) with this many incidents per latency run; 0 skips "
        "it (default 50)",
    )
    parser.add_argument(
        "--memory-timeout",
        type=float,
        default=600.0,
        help="time bound of phase 3 in seconds (default 600)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="default: a fresh SQLite file in a temp dir; a postgresql+asyncpg "
        "URL names a server and maintenance database: a fresh database is "
        "created there for the run and dropped after it",
    )
    parser.add_argument(
        "--fingerprints",
        type=int,
        default=5000,
        help="alert series in the traffic pool (default 5000)",
    )
    parser.add_argument(
        "--duplicates",
        type=float,
        default=0.3,
        help="share of bodies that re-deliver a recent body exactly (default 0.3)",
    )
    parser.add_argument("--seed", type=int, default=1, help="traffic seed (default 1)")
    parser.add_argument(
        "--json",
        metavar="FILE",
        default=None,
        help="also write the results as JSON to FILE ('-': stdout)",
    )
    parser.add_argument(
        "--profile-server",
        metavar="FILE",
        type=Path,
        default=None,
        help="run the server under cProfile, writing its stats to FILE",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp dir (config, server log, SQLite file)"
    )
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.duration <= 0 or args.rate <= 0 or args.memory_timeout <= 0:
        parser.error("--duration, --rate and --memory-timeout must be positive")
    if args.concurrency < 1 or args.incidents < 0 or args.playbook_runs < 0:
        parser.error("--concurrency must be >= 1, --incidents and --playbook-runs >= 0")
    if args.escalation_incidents < 0:
        parser.error("--escalation-incidents must be >= 0")
    if args.fingerprints < 100:
        parser.error("--fingerprints must be >= 100")
    if not 0 <= args.duplicates < 1:
        parser.error("--duplicates must be in [0, 1)")


def run_stoppable(bench: Callable[[], Awaitable[None]], name: str) -> int | None:
    """Run `bench()` so that Ctrl-C and SIGTERM stop the server and remove the temp files
    (its own cleanup runs); the exit status on a stop or a BenchError, None when it ran."""

    async def guarded() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await bench()

    try:
        asyncio.run(guarded())
    except KeyboardInterrupt:
        print("\ninterrupted: the server was stopped and the temp files removed", file=sys.stderr)
        return 130
    except asyncio.CancelledError:
        print("\nterminated: the server was stopped and the temp files removed", file=sys.stderr)
        return 143
    except BenchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    command = shlex.join([sys.executable, "-m", "bench.webhook", *(argv or sys.argv[1:])])
    run = Run(args=args, command=command, loadavg_before=_loadavg())

    failed = run_stoppable(lambda: bench(run), "bench")
    if failed is not None:
        return failed
    run.loadavg_after = _loadavg()
    table, data = summarize(run)
    print(table, flush=True)
    if args.playbook_runs > 0:
        # After the server above has stopped, so the two do not share the CPUs.
        from bench import playbook_latency  # it imports this module: not at the top

        status, latency_table, data["playbook_latency"] = playbook_latency.report(
            args.playbook_runs, 1, args.keep, command
        )
        print(latency_table, flush=True)
        if status in (130, 143):  # interrupted or terminated
            return status
        data["failed"] |= status != 0
    if args.escalation_incidents > 0:
        from bench import escalation  # it imports this module: not at the top

        arguments = ["--incidents", str(args.escalation_incidents)]
        status, escalation_table, data["escalation"] = escalation.report(arguments, command)
        print(escalation_table, flush=True)
        if status in (130, 143):
            return status
        data["failed"] |= status != 0
    write_json(args.json, data)
    return 1 if data["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
