"""One replica and three replicas on one PostgreSQL: accepted alerts/s and webhook p99.

    python -m bench.replicas [--replicas 1 3] [--duration S] [--concurrency N] [--rate A]
                             [--database-url URL] [--json FILE]

For each N in --replicas: a fresh PostgreSQL database (created through --database-url, which
names a server and a maintenance database, migrated once with `remediator db upgrade`, dropped
with FORCE at the end); N `remediator serve` processes on it, each bench.webhook's Server
(shipped rules, `remediation: {workers: 0}`: intake only, jobs queued, none run), all ready;
then, after 3 s of unreported warm-up:

A. throughput: --concurrency closed-loop senders, sender k posting to replica k mod N, for
   --duration s (bench.webhook's closed_loop, once per replica with its share of senders);
B. latency: an open loop at --rate alerts/s in all, --rate/N to each replica on its own fixed
   timeline (bench.webhook's open_loop, once per replica), latency measured from each
   request's scheduled send time (no coordinated omission).

Around each phase the CPU time of every server process, of this bench, of all `postgres`
processes and of the whole machine is read from /proc, so a saturated load generator or a
busy database shows. Every replica, PostgreSQL and the bench share the same CPUs: on a
2-core machine three replicas show contention, not scale (the table says so). Any non-2xx
reply, failed request or wrong `received` count makes the exit status 1. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.webhook import (
    MAX_BATCH,
    OPEN_LOOP_MAX_IN_FLIGHT,
    REPO,
    RULES_DIR,
    THROUGHPUT_BODY_BUDGET_PER_S,
    WEBHOOK,
    BenchError,
    Body,
    PhaseStats,
    Server,
    Traffic,
    _loadavg,
    _own_cpu_seconds,
    _percentile,
    _pg_execute,
    _proc_cpu_seconds,
    _progress,
    _session,
    _with_database,
    closed_loop,
    open_loop,
    run_stoppable,
    scrape,
    server_side,
    write_json,
)

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
# The traffic of bench.webhook's defaults; the same for every N (a fresh Traffic each time).
FINGERPRINTS = 5000
DUPLICATE_SHARE = 0.3
SEED = 1
WARMUP_S = 3.0
WARMUP_ALERTS_PER_REPLICA = 2_000
MIGRATE_TIMEOUT_S = 120.0
P99_TARGET_MS = 50.0


# -- CPU accounting -------------------------------------------------------------------------


# A client backend's title: "postgres: 15/main: USER DATABASE HOST(PORT) STATE".
_BACKEND = re.compile(r"^postgres: (?:\S+: )?\S+ (\S+) (?:\[local\]|\S+\(\d+\))")


def _postgres_cpu_seconds(database: str) -> dict[int, tuple[bool, float]]:
    """pid -> (is it ours, user + system CPU) of every process named `postgres`. Ours: the
    client backends on `database` and the server's shared processes (postmaster,
    checkpointer, walwriter, ...); not ours: backends on other databases, such as those of
    other programs running on the machine at the same time."""
    out: dict[int, tuple[bool, float]] = {}
    hz = os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                text = stat.read()
            head, _, rest = text.rpartition(")")
            if head.partition("(")[2] != "postgres":
                continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                title = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # exited meanwhile
            continue
        fields = rest.split()
        backend = _BACKEND.match(title)
        ours = backend is None or backend.group(1) == database
        out[int(entry.name)] = (ours, (int(fields[11]) + int(fields[12])) / hz)
    return out


def _machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores, from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
    total = sum(values[:8])
    busy = total - values[3] - values[4]
    hz = os.sysconf("SC_CLK_TCK")
    return busy / hz, total / hz


@dataclass(slots=True)
class CpuSnapshot:
    wall: float
    servers: list[float]
    bench: float
    postgres: dict[int, tuple[bool, float]]
    machine_busy: float
    machine_total: float

    @classmethod
    def take(cls, servers: Sequence[Server], database: str) -> CpuSnapshot:
        busy, total = _machine_cpu_seconds()
        return cls(
            wall=time.monotonic(),
            servers=[_proc_cpu_seconds(s.pid) for s in servers],
            bench=_own_cpu_seconds(),
            postgres=_postgres_cpu_seconds(database),
            machine_busy=busy,
            machine_total=total,
        )

    def percent_since(self, start: CpuSnapshot) -> dict[str, Any]:
        """CPU use between two snapshots, in % of one core (the machine's: of all cores).
        A postgres process that exited in between is not counted (the servers' connections
        are pooled, so theirs live through a phase)."""
        wall = max(self.wall - start.wall, 1e-9)
        servers = [100 * (b - a) / wall for a, b in zip(start.servers, self.servers, strict=True)]
        machine_busy = 100 * (self.machine_busy - start.machine_busy) / wall
        bench = 100 * (self.bench - start.bench) / wall
        postgres = {True: 0.0, False: 0.0}
        for pid, (ours, seconds) in self.postgres.items():
            postgres[ours] += 100 * (seconds - start.postgres.get(pid, (ours, 0.0))[1]) / wall
        return {
            "wall_s": wall,
            "servers_pct": servers,
            "servers_total_pct": sum(servers),
            "postgres_pct": postgres[True],
            "postgres_other_databases_pct": postgres[False],
            "bench_pct": bench,
            # Everything else that ran: the kernel (softirqs), other programs on the machine.
            "other_pct": max(0.0, machine_busy - sum(servers) - postgres[True] - bench),
            "machine_busy_pct": machine_busy,
            "machine_capacity_pct": 100 * (self.machine_total - start.machine_total) / wall,
        }


# -- spreading bench.webhook's loops over the replicas ---------------------------------------


def _senders_per_replica(concurrency: int, replicas: int) -> list[int]:
    """Sender k posts to replica k mod N."""
    return [len(range(i, concurrency, replicas)) for i in range(replicas)]


def _deal(traffic: Traffic, alerts: Sequence[int], slots: Sequence[int]) -> list[list[Body]]:
    """One traffic stream dealt to the replicas in the order of `slots` (replica indexes,
    cycled) until list i carries at least alerts[i] alerts: the replicas see interleaved
    parts of one timeline rather than consecutive stretches of it."""
    out: list[list[Body]] = [[] for _ in alerts]
    carried = [0] * len(alerts)
    position = 0
    while any(c < want for c, want in zip(carried, alerts, strict=True)):
        index = slots[position % len(slots)]
        position += 1
        body = traffic.next_body()
        out[index].append(body)
        carried[index] += body.alerts
    return out


def merge(name: str, parts: Sequence[PhaseStats]) -> PhaseStats:
    """One PhaseStats for the whole phase from the per-replica ones (same clock)."""
    total = PhaseStats(name)
    total.elapsed = max((p.elapsed for p in parts), default=0.0)
    total.ended_by = "count" if any(p.ended_by == "count" for p in parts) else "time"
    for part in parts:
        total.requests += part.requests
        total.bodies_available += part.bodies_available
        total.alerts_sent += part.alerts_sent
        total.alerts_ok += part.alerts_ok
        total.duplicate_bodies += part.duplicate_bodies
        total.statuses.update(part.statuses)
        for status, sample in part.error_samples.items():
            total.error_samples.setdefault(status, sample)
        total.latencies.extend(part.latencies)
        total.reply_totals.update(part.reply_totals)
        total.dispatch_lag_max = max(total.dispatch_lag_max, part.dispatch_lag_max)
        total.max_in_flight += part.max_in_flight
    return total


@dataclass(slots=True)
class Phase:
    name: str
    total: PhaseStats
    per_replica: list[PhaseStats]
    cpu: dict[str, Any]
    server: list[dict[str, float]]


async def _measured(
    name: str,
    database: str,
    servers: Sequence[Server],
    parts: list[PhaseStats],
    work: Callable[[], Awaitable[Any]],
) -> Phase:
    """Run a phase (`work()`, called once the counters are read) with CPU and /metrics
    accounting around it."""
    async with _session(4) as ops:
        before = [await scrape(ops, s.base) for s in servers]
        start = CpuSnapshot.take(servers, database)
        await work()
        cpu = CpuSnapshot.take(servers, database).percent_since(start)
        after = [await scrape(ops, s.base) for s in servers]
    phase = Phase(
        name=name,
        total=merge(name, parts),
        per_replica=parts,
        cpu=cpu,
        server=[server_side(b, a) for b, a in zip(before, after, strict=True)],
    )
    if phase.total.errors:
        _progress(f"!!! {name}: {phase.total.errors} FAILED REQUESTS: {dict(phase.total.statuses)}")
    return phase


async def _throughput(
    name: str,
    database: str,
    servers: Sequence[Server],
    traffic: Traffic,
    concurrency: int,
    duration: float,
    alerts_budget: int,
) -> Phase:
    senders = _senders_per_replica(concurrency, len(servers))
    wanted = [math.ceil(alerts_budget * k / concurrency) for k in senders]
    slots = [k % len(servers) for k in range(concurrency)]  # sender k -> replica k mod N
    bodies = _deal(traffic, wanted, slots)  # before the clock starts
    parts = [PhaseStats(f"{name}-{i}") for i in range(len(servers))]
    async with _session(concurrency) as session:

        def work() -> Awaitable[Any]:
            return asyncio.gather(
                *(
                    closed_loop(session, s.base + WEBHOOK, b, k, duration, stats)
                    for s, b, k, stats in zip(servers, bodies, senders, parts, strict=True)
                )
            )

        return await _measured(name, database, servers, parts, work)


async def _latency(
    database: str, servers: Sequence[Server], traffic: Traffic, rate: float, duration: float
) -> Phase:
    n = len(servers)
    share = rate / n
    bodies = _deal(traffic, [int(share * duration) + MAX_BATCH] * n, range(n))
    parts = [PhaseStats(f"latency-{i}") for i in range(n)]
    async with _session(OPEN_LOOP_MAX_IN_FLIGHT * n) as session:

        def work() -> Awaitable[Any]:
            return asyncio.gather(
                *(
                    open_loop(session, s.base + WEBHOOK, b, share, duration, stats)
                    for s, b, stats in zip(servers, bodies, parts, strict=True)
                )
            )

        return await _measured("latency", database, servers, parts, work)


# -- one N ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    replicas: int
    database: str = ""
    startup_s: list[float] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    phases: dict[str, Phase] = field(default_factory=dict)
    server_exit: list[int | None] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


async def _migrate(server: Server) -> None:
    """`remediator db upgrade` once, with the first replica's config: replicas starting
    together on a new database would race to migrate it."""
    script = Path(sys.executable).parent / "remediator"
    prefix = [str(script)] if script.exists() else [sys.executable, "-m", "remediator.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMEDIATOR_")}
    process = await asyncio.create_subprocess_exec(
        *prefix,
        "db",
        "upgrade",
        "--config",
        str(server.config),
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), MIGRATE_TIMEOUT_S)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        text = output.decode(errors="replace")
        raise BenchError(f"remediator db upgrade exited with {process.returncode}:\n{text}")
    _progress(output.decode(errors="replace").strip())


async def measure(args: argparse.Namespace, n: int, result: Result) -> None:
    workdir = Path(tempfile.mkdtemp(prefix=f"remediator-bench-replicas-{n}-"))
    name = f"remediator_bench_replicas_{uuid.uuid4().hex}"
    url = _with_database(args.database_url, name)
    result.database = name
    servers: list[Server] = []
    created = False
    try:
        await _pg_execute(args.database_url, f'CREATE DATABASE "{name}"')
        created = True
        for i in range(n):
            (workdir / f"replica-{i}").mkdir()
            servers.append(Server(workdir / f"replica-{i}", url, None))
        await _migrate(servers[0])
        _progress(f"{n} replica(s): starting {shlex.join(servers[0].argv)} ...")
        for server in servers:
            server.start()
        async with _session(4 * n) as ops:
            result.startup_s = list(await asyncio.gather(*(s.wait_ready(ops) for s in servers)))
        result.pids = [s.pid for s in servers]
        _progress(
            f"ready: {', '.join(f'{s.base} (pid {s.pid})' for s in servers)} "
            f"in {max(result.startup_s):.1f} s"
        )

        traffic = Traffic(FINGERPRINTS, DUPLICATE_SHARE, SEED)
        concurrency = args.concurrency
        # Warm-up (reported only if it fails): connections, caches, first-time imports.
        result.phases["warmup"] = await _throughput(
            "warmup", name, servers, traffic, concurrency, WARMUP_S, WARMUP_ALERTS_PER_REPLICA * n
        )
        budget = int(args.duration * THROUGHPUT_BODY_BUDGET_PER_S)
        _progress(
            f"phase A throughput: {concurrency} senders over {n} replica(s) "
            f"{_senders_per_replica(concurrency, n)}, {args.duration:g} s"
        )
        phase = await _throughput(
            "throughput", name, servers, traffic, concurrency, args.duration, budget
        )
        result.phases["throughput"] = phase
        stats = phase.total
        _progress(f"  {stats.alerts_ok / stats.elapsed:,.0f} alerts/s, {stats.errors} errors")
        await asyncio.sleep(1.0)

        _progress(
            f"phase B latency: open loop at {args.rate:,.0f} alerts/s "
            f"({args.rate / n:,.0f} to each replica) for {args.duration:g} s"
        )
        phase = await _latency(name, servers, traffic, args.rate, args.duration)
        result.phases["latency"] = phase
        latencies = sorted(phase.total.latencies)
        _progress(
            f"  p99 {_percentile(latencies, 0.99) * 1000:.1f} ms, {phase.total.errors} errors"
        )
    finally:
        for i, server in enumerate(servers):
            code = server.stop()
            result.server_exit.append(code)
            if code not in (0, None):
                result.notes.append(f"replica {i} exited with {code}:\n{server.log_tail()}")
        try:
            if created:
                await _pg_execute(
                    args.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
                )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


# -- the report -------------------------------------------------------------------------------


def _phase_data(phase: Phase) -> dict[str, Any]:
    def one(stats: PhaseStats) -> dict[str, Any]:
        latencies = sorted(stats.latencies)
        elapsed = max(stats.elapsed, 1e-9)
        return {
            "elapsed_s": round(stats.elapsed, 3),
            "ended_by": stats.ended_by,
            "requests": stats.requests,
            "alerts_sent": stats.alerts_sent,
            "alerts_ok": stats.alerts_ok,
            "alerts_per_s": stats.alerts_ok / elapsed,
            "requests_per_s": stats.requests / elapsed,
            "statuses": dict(stats.statuses),
            "errors": stats.errors,
            "error_samples": stats.error_samples,
            "latency_ms": {f"p{q}": _percentile(latencies, q / 100) * 1000 for q in (50, 90, 99)}
            | {"max": (latencies[-1] * 1000) if latencies else math.nan},
            "replies": dict(stats.reply_totals),
            "max_in_flight": stats.max_in_flight,
            "dispatch_lag_max_ms": stats.dispatch_lag_max * 1000,
        }

    data = one(phase.total)
    data["cpu"] = phase.cpu
    data["replicas"] = [
        one(stats) | {"server_metrics": server}
        for stats, server in zip(phase.per_replica, phase.server, strict=True)
    ]
    return data


def summarize(
    args: argparse.Namespace, results: Sequence[Result], command: str, loadavg: list[str]
) -> tuple[str, dict[str, Any], bool]:
    nproc = len(os.sched_getaffinity(0))
    data: dict[str, Any] = {
        "command": command,
        "machine": {
            "nproc": nproc,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_before": loadavg[0],
            "loadavg_after": loadavg[-1],
        },
        "traffic": {"fingerprints": FINGERPRINTS, "duplicate_share": DUPLICATE_SHARE, "seed": SEED},
        "concurrency": args.concurrency,
        "rate": args.rate,
        "duration_s": args.duration,
        "runs": [],
    }
    failed = False
    rate = f"{args.rate:,.0f}/s"
    head = (
        f"{'replicas':>8} | {'alerts/s':>8} | {'req/s':>6} | {'closed p50/p99 ms':>17} | "
        f"{'p50 / p99 / max ms @ ' + rate:>30} | {'achieved':>8} | {'errors':>6}"
    )
    cpu_head = (
        f"{'replicas':>8} | {'phase':<10} | {'servers (each)':<22} | {'postgres':>8} | "
        f"{'bench':>5} | {'other (pg other dbs)':>20} | {'machine busy':>15}"
    )
    rows: list[str] = []
    cpu_rows: list[str] = []
    balance: list[str] = []
    for result in results:
        run: dict[str, Any] = {
            "replicas": result.replicas,
            "database": result.database,
            "startup_s": result.startup_s,
            "server_exit": result.server_exit,
            "notes": result.notes,
            "phases": {name: _phase_data(p) for name, p in result.phases.items()},
        }
        data["runs"].append(run)
        failed |= any(p.total.errors for p in result.phases.values())
        failed |= any(code not in (0, None) for code in result.server_exit)
        phases = run["phases"]
        if "throughput" not in phases or "latency" not in phases:
            rows.append(f"{result.replicas:>8} | (did not finish)")
            continue
        a, b = phases["throughput"], phases["latency"]
        errors = sum(p["errors"] for p in phases.values())
        la, lb = a["latency_ms"], b["latency_ms"]
        rows.append(
            f"{result.replicas:>8} | {a['alerts_per_s']:>8,.0f} | {a['requests_per_s']:>6,.0f} | "
            f"{la['p50']:>7.1f} / {la['p99']:>7.1f} | "
            f"{lb['p50']:>8.1f} / {lb['p99']:>7.1f} / {lb['max']:>7.1f} | "
            f"{b['alerts_per_s']:>8,.0f} | {errors:>6}"
        )
        for label, phase in (("A closed", a), ("B @ " + f"{args.rate:,.0f}", b)):
            cpu = phase["cpu"]
            each = " + ".join(f"{v:.0f}" for v in cpu["servers_pct"])
            servers = f"{cpu['servers_total_pct']:.0f}%" + (
                f" ({each})" if len(cpu["servers_pct"]) > 1 else ""
            )
            busy = f"{cpu['machine_busy_pct']:.0f}% of {cpu['machine_capacity_pct']:.0f}%"
            cpu_rows.append(
                f"{result.replicas:>8} | {label:<10} | {servers:<22} | "
                f"{cpu['postgres_pct']:>7.0f}% | {cpu['bench_pct']:>4.0f}% | "
                f"{cpu['other_pct']:>11.0f}% ({cpu['postgres_other_databases_pct']:>4.0f}%) | "
                f"{busy:>15}"
            )
        if result.replicas > 1:
            per = ", ".join(
                f"#{i}: {r['alerts_per_s']:,.0f} alerts/s, closed p99 "
                f"{r['latency_ms']['p99']:.1f} ms; @rate p99 "
                f"{b['replicas'][i]['latency_ms']['p99']:.1f} ms"
                for i, r in enumerate(a["replicas"])
            )
            balance.append(f"  {result.replicas} replicas: {per}")
        for note in result.notes:
            balance.append(f"  note ({result.replicas} replicas): {note}")
        for name, phase in phases.items():
            for status, sample in phase["error_samples"].items():
                balance.append(f"  !!! {result.replicas} replicas, {name}: {status}: {sample!r}")
    width = 112
    lines = [
        "",
        "=" * width,
        "remediator: 1 vs N replicas on one PostgreSQL",
        f"command  : {command}",
        f"machine  : nproc {nproc}, {platform.platform()}, "
        f"{platform.python_implementation()} {platform.python_version()}",
        f"load avg : {loadavg[0]} before, {loadavg[-1]} after (1/5/15 min)",
        f"database : a fresh remediator_bench_replicas_<uuid> per N on "
        f"{_with_database(args.database_url, '<uuid>').rsplit('/', 1)[0]}, migrated once "
        "(`remediator db upgrade`), dropped afterwards",
        f"servers  : `remediator serve`, rules {RULES_DIR}/ (shipped), "
        "remediation: {workers: 0} (intake only: jobs queued, none run)",
        f"traffic  : bench.webhook's ({FINGERPRINTS:,} fingerprints, "
        f"{DUPLICATE_SHARE:.0%} duplicate bodies, seed {SEED}), the same for every N",
        f"phase A  : closed loop, {args.concurrency} senders (sender k -> replica k mod N), "
        f"{args.duration:g} s, after {WARMUP_S:g} s of warm-up",
        f"phase B  : open loop at {args.rate:,.0f} alerts/s in all ({args.rate:,.0f}/N to each "
        f"replica, its own timeline), {args.duration:g} s, latency from the scheduled send time",
        f"!!! CPUs : all {nproc} core(s) are shared by every replica, PostgreSQL and this load "
        "generator:",
        "           more replicas on the same cores measure contention, not scale-out",
        "-" * width,
        head,
        "-" * len(head),
        *rows,
        "",
        f"CPU in % of one core over each phase, from /proc (the machine: {nproc} cores). "
        "postgres: its shared processes",
        "and the backends on this run's database; other: the rest of the machine's busy time "
        "(kernel, other programs,",
        "backends on other databases: in brackets).",
        cpu_head,
        "-" * len(cpu_head),
        *cpu_rows,
    ]
    if balance:
        lines += ["", "per replica (phase A; phase B p99):", *balance]
    if failed:
        lines.append("!!! FAILED REQUESTS OR A SERVER THAT DID NOT EXIT CLEANLY: see above")
    lines.append("=" * width)
    data["failed"] = failed
    return "\n".join(lines), data, failed


# -- the command ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.replicas",
        description="Benchmark 1 vs N remediator replicas on one PostgreSQL: "
        "accepted alerts/s (closed loop) and webhook latency at a fixed rate (open loop).",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        nargs="+",
        default=[1, 3],
        help="replica counts to measure, each on a fresh database (default: 1 3)",
    )
    parser.add_argument(
        "--duration", type=float, default=20.0, help="seconds of phases A and B each (default 20)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=12,
        help="closed-loop senders in phase A, spread round-robin over the replicas (default 12)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=1000.0,
        help="alerts/s of the open loop in phase B, over all replicas (default 1000)",
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="a PostgreSQL server and maintenance database; a fresh database is created "
        f"there for each N and dropped after it (default {DEFAULT_DATABASE_URL})",
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        default=None,
        help="also write the results as JSON to FILE ('-': stdout)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.rate <= 0:
        parser.error("--duration and --rate must be positive")
    if min(args.replicas) < 1 or args.concurrency < max(args.replicas):
        parser.error("--replicas must be >= 1 and --concurrency >= the largest of them")
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be a postgresql+asyncpg:// URL")
    command = shlex.join([sys.executable, "-m", "bench.replicas", *(argv or sys.argv[1:])])
    loadavg = [_loadavg()]
    results: list[Result] = []

    async def bench() -> None:
        for n in args.replicas:
            result = Result(replicas=n)
            results.append(result)
            await measure(args, n, result)
            loadavg.append(_loadavg())

    status = run_stoppable(bench, "bench.replicas")
    if status is not None:
        return status
    table, data, failed = summarize(args, results, command, loadavg)
    print(table, flush=True)
    write_json(args.json, data)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
