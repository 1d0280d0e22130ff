"""Time from an Alertmanager webhook to a playbook's first effect, against the bare playbook.

    python -m bench.playbook_latency [--runs N] [--warmup N] [--json FILE] [--keep]

One trivial playbook whose first task writes a marker file runs two ways, alternately:

- bare: `ansible-playbook -i 127.0.0.1, -c local` with the environment the service gives it,
  timed from just before the process starts to the marker's appearance;
- through remediator: a real `remediator serve` (fresh SQLite, a rule whose `type: ansible`
  action is that playbook) gets one webhook with a new alert, timed from just before the
  POST to the marker's appearance.

The difference is what remediator adds (target: at most 0.25 s). The job's timestamps in the
database and ansible-runner's artifacts split the remediator side into intake, wake-up, job
start, executor and the playbook itself. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson

from bench.webhook import (
    HEADERS,
    WEBHOOK,
    BenchError,
    Server,
    _loadavg,
    _progress,
    _session,
    write_json,
)
from remediator.store.jobs import ACTIVE_STATES, SUCCEEDED

TARGET_ADDED_S: Final = 0.25
# How often the marker's existence is checked: the measurement's resolution.
POLL_S: Final = 0.005
# The remediator side checks the job's state this often while waiting, to fail fast.
JOB_CHECK_S: Final = 0.5
EFFECT_TIMEOUT_S: Final = 60.0
DONE_TIMEOUT_S: Final = 60.0
ALERTNAME: Final = "PlaybookLatencyBench"
PLAYBOOK_NAME: Final = "latency.yml"
HOST: Final = "127.0.0.1"
# The first task is the effect. `touch` creates the marker and stamps it with the time of
# the module's run, so its mtime checks the polling. (ansible.builtin.copy would not do: it
# renames a file transferred before the module starts, ~0.4 s earlier, mtime and all.)
PLAYBOOK: Final = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Touch the marker
      ansible.builtin.file:
        path: "{{ marker }}"
        state: touch
"""


@dataclass(frozen=True, slots=True)
class Workspace:
    """The temp dir of one run: playbook, rule, markers, database, ansible run dirs."""

    root: Path

    @property
    def playbooks(self) -> Path:
        return self.root / "playbooks"

    @property
    def rules(self) -> Path:
        return self.root / "rules"

    @property
    def markers(self) -> Path:
        return self.root / "markers"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def database(self) -> Path:
        return self.root / "bench.db"

    def create(self) -> None:
        for folder in (self.playbooks, self.rules, self.markers):
            folder.mkdir()
        (self.playbooks / PLAYBOOK_NAME).write_text(PLAYBOOK)
        (self.rules / "latency.yml").write_text(_rule_text(self.markers))


def _rule_text(markers: Path) -> str:
    # One incident per alert (no group_by), so every alert queues a job of its own; the
    # marker's name comes from the alert's `run` label, its host from `instance`.
    marker = json.dumps(f"{markers}/{{{{ labels.run }}}}")
    return f"""\
rules:
  - name: playbook-latency
    match: ['alertname="{ALERTNAME}"']
    actions:
      - type: ansible
        playbook: {PLAYBOOK_NAME}
        extravars: {{marker: {marker}}}
        timeout: 2m
    verify: {{resolved_within: 1h}}
"""


def extra_env() -> dict[str, str]:
    """What `executors.ansible.extra_env` sets, and the bare run gets too.

    The venv's Python on localhost, as the ansible integration tests do: no interpreter
    discovery, which would otherwise run on the first task of both sides.
    """
    return {"ANSIBLE_PYTHON_INTERPRETER": sys.executable}


def bare_env() -> dict[str, str]:
    """The environment the ansible executor gives ansible-playbook (before ansible-runner's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMEDIATOR_")}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(filter(None, [bin_dir, env.get("PATH")]))
    env["ANSIBLE_NOCOLOR"] = "1"
    return env | extra_env()


class LatencyServer(Server):
    """bench.webhook's server with this bench's rules, playbooks and ansible settings."""

    def __init__(self, workspace: Workspace) -> None:
        super().__init__(workspace.root, f"sqlite+aiosqlite:///{workspace.database}", None)
        # Replaces the config the parent wrote (the shipped rules) with this bench's own;
        # the port it chose stays.
        config = {
            "listen": f"{HOST}:{self.port}",
            "database_url": f"sqlite+aiosqlite:///{workspace.database}",
            "rules": [f"{workspace.rules}/"],
            "playbooks_dir": str(workspace.playbooks),
            "log_level": "info",
            "remediation": {"data_dir": str(workspace.runs)},
            "executors": {"ansible": {"connection": "local", "extra_env": extra_env()}},
        }
        self.config.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML


# -- one measurement ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """One run of the playbook, bare or through remediator, in seconds from its start."""

    kind: str
    effect_s: float
    """Start to the marker seen by polling (every POLL_S)."""
    mtime_s: float
    """Start to the marker's mtime: the file system's own clock, no polling delay."""
    done_s: float
    """Start to ansible-playbook's exit (bare) or the job's end in the database."""
    stages: dict[str, float] = field(default_factory=dict)
    """Remediator only: the time between consecutive timestamps of the job."""


def _marker_mtime(marker: Path) -> float:
    return marker.stat().st_mtime_ns / 1e9


def _exists(path: Path) -> bool:
    """One stat(2), called on the event loop on purpose: it takes microseconds, where a hop
    to a worker thread would add its own jitter to what is measured."""
    return path.exists()


async def _wait_for_marker(
    marker: Path, started: float, check: Callable[[], str | None], what: str
) -> float:
    """Seconds from `started` (time.monotonic) until `marker` exists; BenchError if `check`
    reports a problem or EFFECT_TIMEOUT_S passes."""
    deadline = started + EFFECT_TIMEOUT_S
    while True:
        now = time.monotonic()
        if _exists(marker):
            return now - started
        if (problem := check()) is not None:
            raise BenchError(f"{what}: {problem}")
        if now > deadline:
            raise BenchError(f"{what}: no marker {marker} after {EFFECT_TIMEOUT_S:.0f} s")
        await asyncio.sleep(POLL_S)


async def bare_run(workspace: Workspace, run: str) -> Sample:
    """`ansible-playbook` alone, as a user would run it, with the service's environment."""
    marker = workspace.markers / run
    playbook_bin = Path(sys.executable).parent / "ansible-playbook"
    if not playbook_bin.exists():
        raise BenchError(f"{playbook_bin} is missing (ansible-core, a dependency, installs it)")
    argv = [str(playbook_bin), "-i", f"{HOST},", "-c", "local", "-e", f"marker={marker}"]
    argv.append(PLAYBOOK_NAME)
    output = workspace.root / f"{run}.log"
    process, wall, started = _start(argv, workspace.playbooks, output)
    try:

        def check() -> str | None:
            if process.poll() is None:
                return None
            return f"ansible-playbook exited with {process.returncode}\n{_tail(output)}"

        effect = await _wait_for_marker(marker, started, check, f"bare run {run}")
        rc = await asyncio.to_thread(process.wait, DONE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        message = f"bare run {run}: still running {DONE_TIMEOUT_S:.0f} s after the marker"
        raise BenchError(message) from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if rc != 0:
        raise BenchError(f"bare run {run}: ansible-playbook exited with {rc}\n{_tail(output)}")
    done = time.monotonic() - started
    return Sample("bare", effect, _marker_mtime(marker) - wall, done)


def _start(
    argv: list[str], cwd: Path, output: Path
) -> tuple[subprocess.Popen[bytes], float, float]:
    """ansible-playbook started on the event loop, not in a thread: the clocks (wall for the
    marker's mtime, monotonic for polling) are read just before the fork."""
    with open(output, "wb") as log:
        wall, started = time.time(), time.monotonic()
        process = subprocess.Popen(
            argv,
            cwd=cwd,  # the playbooks dir, as ansible-runner's project_dir
            env=bare_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, wall, started


def _tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(f"  | {line}" for line in path.read_text().splitlines()[-lines:])
    return "  (no output)"


def alert_body(run: str) -> bytes:
    """One Alertmanager v4 notification with one new firing alert (new fingerprint, now)."""
    now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    labels = {
        "alertname": ALERTNAME,
        "instance": f"{HOST}:9100",
        "job": "node-exporter",
        "run": run,
        "severity": "warning",
    }
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": f"playbook latency bench, run {run}"},
        "startsAt": now,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": uuid.uuid4().hex[:16],
    }
    group = {"alertname": ALERTNAME}
    return orjson.dumps(
        {
            "receiver": "remediator",
            "status": "firing",
            "alerts": [alert],
            "groupLabels": group,
            "commonLabels": labels,
            "commonAnnotations": alert["annotations"],
            "externalURL": "http://alertmanager:9093",
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{ALERTNAME}"}}',
            "truncatedAlerts": 0,
        }
    )


class Jobs:
    """Reads the server's remediation jobs from its SQLite file (read-only)."""

    def __init__(self, database: Path) -> None:
        self._uri = f"file:{database}?mode=ro"

    def latest(self) -> dict[str, Any] | None:
        """The newest job with its action run: state and the timestamps it went through."""
        query = """
            SELECT j.id, j.state, j.outcome, j.created_at, j.started_at, j.finished_at,
                   a.started_at AS action_started_at
            FROM remediation_jobs j LEFT JOIN action_runs a ON a.job_id = j.id
            ORDER BY j.id DESC, a.id DESC LIMIT 1
        """
        with contextlib.closing(sqlite3.connect(self._uri, uri=True)) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute(query).fetchone()
        return None if row is None else dict(row)


def _epoch(text: str | None) -> float:
    """A stored timestamp ("YYYY-MM-DD HH:MM:SS.ffffff", UTC) as seconds since the epoch."""
    if text is None:
        return float("nan")
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


async def remediator_run(
    server: Server, session: aiohttp.ClientSession, workspace: Workspace, run: str
) -> Sample:
    """One webhook to the running service; its job runs the playbook."""
    marker = workspace.markers / run
    jobs = Jobs(workspace.database)
    known = jobs.latest()
    body = alert_body(run)
    url = server.base + WEBHOOK
    wall, started = time.time(), time.monotonic()
    async with session.post(url, data=body, headers=HEADERS) as response:
        reply = await response.read()
    replied = time.time()
    if response.status != 200 or orjson.loads(reply).get("stored") != 1:
        raise BenchError(f"run {run}: webhook answered {response.status}: {reply[:300]!r}")
    check = _job_watch(server, jobs, None if known is None else known["id"])
    effect = await _wait_for_marker(marker, started, check, f"remediator run {run}")
    job = await _wait_for_job_end(jobs, run)
    done = _epoch(job["finished_at"]) - wall
    # The job's moments, in order. `created_at` is taken as the intake transaction begins;
    # `started_at` when the woken runner begins its claim; the action run's `started_at`
    # just before the executor is called; ansible-runner writes `command` just before it
    # spawns ansible-playbook.
    moments = [
        ("posted", wall),
        ("queued", _epoch(job["created_at"])),
        ("picked", _epoch(job["started_at"])),
        ("action", _epoch(job["action_started_at"])),
        ("spawn", _spawn_time(workspace.runs, job["id"])),
        ("effect", _marker_mtime(marker)),
    ]
    stages = {"reply": replied - wall}
    for (before, t0), (after, t1) in itertools.pairwise(moments):
        stages[f"{before}->{after}"] = t1 - t0
    # remediator's own part: the rest is ansible-playbook, as in the bare run
    stages["posted->spawn"] = moments[-2][1] - wall
    return Sample("remediator", effect, moments[-1][1] - wall, done, stages)


def _spawn_time(runs: Path, job_id: int) -> float:
    """When ansible-runner wrote the command it was about to spawn (its run dir's artifact)."""
    # The ansible executor's run dir: <data_dir>/ansible/<time>-job<id>-a<action>-t<attempt>-*
    found = sorted(runs.glob(f"ansible/*-job{job_id}-a0-t1-*/artifacts/run/command"))
    return _marker_mtime(found[0]) if found else float("nan")


def _job_watch(server: Server, jobs: Jobs, previous: int | None) -> Callable[[], str | None]:
    """A check for `_wait_for_marker`: the server died, or the new job ended without effect."""
    last = time.monotonic()

    def check() -> str | None:
        nonlocal last
        if server.process is None or server.process.poll() is not None:
            return f"the server exited\n{server.log_tail()}"
        if time.monotonic() - last < JOB_CHECK_S:
            return None
        last = time.monotonic()
        job = jobs.latest()
        if job is None or job["id"] == previous or job["state"] in ACTIVE_STATES:
            return None
        return f"job {job['id']} ended {job['state']}: {job['outcome']}"

    return check


async def _wait_for_job_end(jobs: Jobs, run: str) -> dict[str, Any]:
    """The job's row once it has ended; BenchError unless it succeeded."""
    deadline = time.monotonic() + DONE_TIMEOUT_S
    while time.monotonic() < deadline:
        job = jobs.latest()
        if job is not None and job["state"] not in ACTIVE_STATES:
            if job["state"] != SUCCEEDED:
                raise BenchError(f"run {run}: job {job['id']} {job['state']}: {job['outcome']}")
            return job
        await asyncio.sleep(0.02)
    raise BenchError(f"run {run}: the job did not end within {DONE_TIMEOUT_S:.0f} s")


# -- the series -----------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    """Every sample of one invocation, and the conditions it ran in."""

    runs: int
    warmup: int
    command: str
    loadavg_before: str
    loadavg_after: str = ""
    startup_s: float = 0.0
    bare: list[Sample] = field(default_factory=list)
    remediator: list[Sample] = field(default_factory=list)
    warmup_samples: list[Sample] = field(default_factory=list)
    server_exit: int | None = None


async def measure(result: Result, keep: bool) -> None:
    """Warm-up pairs, then `runs` pairs of a bare and a remediator run, one at a time.

    The order within a pair alternates, so that whatever one run leaves behind (the server's
    last writes after a job, a warmer page cache) weighs on both sides alike.
    """
    workspace = Workspace(Path(tempfile.mkdtemp(prefix="remediator-playbook-latency-")))
    server: LatencyServer | None = None
    try:
        workspace.create()
        server = LatencyServer(workspace)
        _progress(f"playbook latency: starting {shlex.join(server.argv)}")
        server.start()
        async with _session(4) as session:
            result.startup_s = await server.wait_ready(session)
            for index in range(result.warmup + result.runs):
                counted = index >= result.warmup
                name = f"{index:02d}" if counted else f"w{index:02d}"
                bare, through = await _pair(server, session, workspace, name, index % 2 == 1)
                if counted:
                    result.bare.append(bare)
                    result.remediator.append(through)
                else:
                    result.warmup_samples += [bare, through]
                _progress(
                    f"  {'run' if counted else 'warm-up'} {name}: {_pair_text(bare, through)}"
                )
    finally:
        if server is not None:
            result.server_exit = server.stop()
        if keep:
            _progress(f"kept {workspace.root}")
        else:
            shutil.rmtree(workspace.root, ignore_errors=True)


async def _pair(
    server: Server,
    session: aiohttp.ClientSession,
    workspace: Workspace,
    name: str,
    remediator_first: bool,
) -> tuple[Sample, Sample]:
    if remediator_first:
        through = await remediator_run(server, session, workspace, f"{name}-remediator")
        return await bare_run(workspace, f"{name}-bare"), through
    bare = await bare_run(workspace, f"{name}-bare")
    return bare, await remediator_run(server, session, workspace, f"{name}-remediator")


def _pair_text(bare: Sample, through: Sample) -> str:
    stages = through.stages
    return (
        f"bare {_s(bare.effect_s)}, remediator {_s(through.effect_s)} "
        f"(queued {_ms(stages['posted->queued'])}, picked {_ms(stages['queued->picked'])}, "
        f"action {_ms(stages['picked->action'])}, spawn {_ms(stages['action->spawn'])}, "
        f"effect {_s(stages['spawn->effect'])}; "
        f"bare by mtime {_s(bare.mtime_s)})"
    )


# -- the report -----------------------------------------------------------------------------


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _s(seconds: float) -> str:
    return f"{seconds:.3f} s"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def summarize(result: Result) -> tuple[str, dict[str, Any]]:
    """The table for people and the same numbers for machines."""
    bare = _spread([s.effect_s for s in result.bare])
    through = _spread([s.effect_s for s in result.remediator])
    added = _spread(
        [r.effect_s - b.effect_s for b, r in zip(result.bare, result.remediator, strict=True)]
    )
    stage_names = list(result.remediator[0].stages)
    stages = {n: statistics.median(s.stages[n] for s in result.remediator) for n in stage_names}
    ok = added["median"] <= TARGET_ADDED_S
    data: dict[str, Any] = {
        "command": result.command,
        "loadavg_before": result.loadavg_before,
        "loadavg_after": result.loadavg_after,
        "runs": result.runs,
        "warmup": result.warmup,
        "poll_s": POLL_S,
        "bare_s": bare,
        "remediator_s": through,
        "added_s": added,
        "added_median_of_medians_s": through["median"] - bare["median"],
        "target_added_s": TARGET_ADDED_S,
        "pass": ok,
        "remediator_stages_median_s": stages,
        "poll_lag_s": _spread([s.effect_s - s.mtime_s for s in (*result.bare, *result.remediator)]),
        "done_median_s": {
            "bare": statistics.median(s.done_s for s in result.bare),
            "remediator": statistics.median(s.done_s for s in result.remediator),
        },
        "samples": [_sample_data(s) for s in (*result.bare, *result.remediator)],
        "warmup_samples": [_sample_data(s) for s in result.warmup_samples],
        "server_exit": result.server_exit,
        "failed": result.server_exit not in (0, None),
    }
    return "\n".join(_table(result, data)), data


def _sample_data(sample: Sample) -> dict[str, Any]:
    return {
        "kind": sample.kind,
        "effect_s": sample.effect_s,
        "mtime_s": sample.mtime_s,
        "done_s": sample.done_s,
        "stages_s": sample.stages,
    }


def _table(result: Result, data: dict[str, Any]) -> list[str]:
    row = "  {:<40}{:<12}{:<24}{:<14}{}"

    def line(name: str, spread: dict[str, float], target: str = "", verdict: str = "") -> str:
        span = f"{_s(spread['min'])} - {_s(spread['max'])}"
        return row.format(name, _s(spread["median"]), span, target, verdict).rstrip()

    bare_mtime = statistics.median(s.mtime_s for s in result.bare)
    stages = data["remediator_stages_median_s"]
    lag = data["poll_lag_s"]
    lines = [
        "",
        "=" * 104,
        "playbook latency: webhook POST -> the playbook's first effect, vs the bare playbook",
        f"command  : {result.command}",
        f"machine  : nproc {len(os.sched_getaffinity(0))}, {platform.platform()}, "
        f"{platform.python_implementation()} {platform.python_version()}",
        f"load avg : {result.loadavg_before} before, {result.loadavg_after} after (1/5/15 min)",
        f"playbook : first task touches a marker file, gather_facts: false, -c local, {HOST}; "
        f"marker polled every {_ms(POLL_S)} (seen {_ms(lag['median'])} after its mtime, "
        f"at most {_ms(lag['max'])})",
        f"runs     : {result.runs} pairs, one run at a time, order alternating within pairs, "
        f"after {result.warmup} warm-up pair(s) not counted; server ready in "
        f"{result.startup_s:.1f} s",
        "-" * 104,
        row.format("", "median", "min - max", "target", "").rstrip(),
        line("bare ansible-playbook: start -> effect", data["bare_s"]),
        line("remediator: POST -> effect", data["remediator_s"]),
        line(
            "added by remediator (pairwise)",
            data["added_s"],
            f"<= {_s(TARGET_ADDED_S)}",
            "PASS" if data["pass"] else "MISS",
        ),
        "",
        "where remediator's time goes (medians; the job's database timestamps, ansible-runner's "
        "`command` artifact, the marker's mtime)",
        f"  POST -> job queued (intake transaction begins)     {_ms(stages['posted->queued'])}"
        f"  (2xx reply after {_ms(stages['reply'])})",
        f"  -> runner awake (commit, wake-up)                  {_ms(stages['queued->picked'])}",
        f"  -> action started (claim, job-start commits)       {_ms(stages['picked->action'])}",
        f"  -> ansible-playbook spawned (executor, runner)     {_ms(stages['action->spawn'])}",
        f"  -> effect (ansible-playbook under ansible-runner)  {_s(stages['spawn->effect'])}"
        f"  (bare, start -> effect by mtime: {_s(bare_mtime)})",
        f"  remediator's own steps, POST -> spawned            {_ms(stages['posted->spawn'])}"
        "  (the rest is ansible-playbook's, as bare)",
        f"  to the end: bare exit {_s(data['done_median_s']['bare'])}, remediator job "
        f"finished {_s(data['done_median_s']['remediator'])}",
    ]
    if data["failed"]:
        lines.append(f"!!! the server exited with {result.server_exit} (log kept with --keep)")
    return [*lines, "=" * 104]


# -- the command ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.playbook_latency",
        description="Time from a webhook to a playbook's first effect, vs the bare playbook.",
    )
    parser.add_argument(
        "--runs", type=int, default=5, help="measured pairs (bare, remediator), default 5"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="pairs run first and not counted, default 1"
    )
    parser.add_argument(
        "--json", metavar="FILE", default=None, help="also write the results as JSON ('-': stdout)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, run dirs)")
    return parser


def run(runs: int, warmup: int, keep: bool, command: str) -> tuple[int, Result]:
    """Measure with Ctrl-C and SIGTERM handled; (exit status, result). 0 when it ran."""
    result = Result(runs=runs, warmup=warmup, command=command, loadavg_before=_loadavg())

    async def guarded() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await measure(result, keep)

    try:
        asyncio.run(guarded())
    except KeyboardInterrupt:
        print("\ninterrupted: the server was stopped and the temp files removed", file=sys.stderr)
        return 130, result
    except asyncio.CancelledError:
        print("\nterminated: the server was stopped and the temp files removed", file=sys.stderr)
        return 143, result
    except BenchError as exc:
        print(f"playbook latency bench: {exc}", file=sys.stderr)
        return 1, result
    result.loadavg_after = _loadavg()
    return 0, result


def report(runs: int, warmup: int, keep: bool, command: str) -> tuple[int, str, dict[str, Any]]:
    """Measure and summarize: (exit status, table, data); also what bench.webhook calls."""
    status, result = run(runs, warmup, keep, command)
    if status != 0:
        return status, "playbook latency: did not complete (see above)", {"failed": True}
    table, data = summarize(result)
    return 0, table, data


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join([sys.executable, "-m", "bench.playbook_latency", *arguments])
    status, table, data = report(args.runs, args.warmup, args.keep, command)
    if status != 0:
        return status
    print(table, flush=True)
    write_json(args.json, data)
    return 1 if data["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
