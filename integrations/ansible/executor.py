"""The ansible executor: one ansible-runner run of one playbook per action attempt.

ansible-runner blocks, so each run happens in a worker thread. Cancelling the task that
awaits `run` (which is how the core enforces `timeout`) sets an event that ansible-runner
polls through `cancel_callback`; it then kills ansible-playbook's process group, and `run`
waits for that before it re-raises CancelledError, so no playbook outlives its action.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import ansible_runner
from ansible_runner.exceptions import AnsibleRunnerException
from remediator_integrations.ansible.inventory import (
    check_limit,
    inventory_document,
    parse_hosts,
    unsafe_vars_document,
)
from remediator_integrations.ansible.model import AnsibleSettings, check_extravar_name
from remediator_integrations.ansible.playbooks import (
    PlaybookProblem,
    playbook_problem,
    resolve_playbook,
)
from remediator_integrations.ansible.process import stop_processes
from remediator_integrations.ansible.results import (
    Outcome,
    failures_from_events,
    judge,
    run_label,
)

from remediator.plugins import (
    ActionFailed,
    ActionRequest,
    ActionResult,
    ExecutorContext,
    PluginError,
)

__all__ = ["AnsibleExecutor", "create"]

log = logging.getLogger(__name__)

# How often ansible-runner asks cancel_callback whether to stop (its default is 5 s).
_CANCEL_POLL_SECONDS: Final = 0.2
# How long a cancelled playbook gets to stop its workers before everything gets SIGKILL.
_TERM_GRACE_SECONDS: Final = 3.0
_INVENTORY_FILE: Final = "inventory.json"
_EXTRAVARS_FILE: Final = "extravars.yml"


@dataclass(frozen=True, slots=True)
class _Plan:
    """One validated run: everything that decides what ansible-playbook does."""

    playbook: str
    """As the rule wrote it, relative to the playbooks directory."""
    playbook_path: Path
    hosts: list[str]
    extravars: dict[str, str]
    options: list[str]
    """ansible-playbook options other than inventory and extravars, e.g. --limit."""

    def argv(self, inputs: Path) -> list[str]:
        """The ansible-playbook arguments before the playbook, with input files in `inputs`."""
        args = ["-i", str(inputs / _INVENTORY_FILE)]
        if self.extravars:
            args += ["-e", f"@{inputs / _EXTRAVARS_FILE}"]
        return args + self.options


class AnsibleExecutor:
    """Runs `type: ansible` actions with ansible-runner; see the module docstring."""

    def __init__(self, playbooks_dir: Path, data_dir: Path, settings: AnsibleSettings) -> None:
        self._playbooks_dir = playbooks_dir
        self._runs_dir = data_dir / "ansible"
        self._settings = settings
        self._pool = ThreadPoolExecutor(settings.max_parallel_runs, thread_name_prefix="ansible")
        self._active: set[Path] = set()
        self._active_lock = threading.Lock()

    async def run(self, request: ActionRequest) -> ActionResult:
        """Run the playbook (with `dry_run`, only describe the run); raise ActionFailed."""
        plan = self._plan(request.params, request.labels)
        if request.dry_run:
            return _describe(plan)
        label = run_label(plan.playbook, plan.hosts)
        try:
            outcome = await self._run_in_thread(plan, request)
        except (AnsibleRunnerException, OSError) as error:
            raise ActionFailed(f"{label}: could not run ansible-playbook: {error}") from None
        return judge(label, outcome)

    async def _run_in_thread(self, plan: _Plan, request: ActionRequest) -> Outcome:
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, self._run_blocking, plan, request, stop)
        try:
            outcome = await asyncio.shield(future)
        except asyncio.CancelledError:
            stop.set()
            # Wait until the playbook and its workers are gone (see process.py): a timed-out
            # action must not keep changing hosts behind the core's back.
            await asyncio.wait({future})
            if not future.cancelled() and future.exception() is not None:
                log.warning("cancelled ansible run failed: %s", future.exception())
            raise
        if outcome is None:  # only when `stop` was set before the thread began
            raise asyncio.CancelledError
        return outcome

    def check(self, params: Mapping[str, Any]) -> list[str]:
        """Problems of an action as written: its playbook missing, not a file, or outside."""
        playbook = params.get("playbook")
        if not isinstance(playbook, str):
            return ["playbook must be a path relative to the playbooks directory"]
        problem = playbook_problem(self._playbooks_dir, playbook)
        return [problem] if problem else []

    async def close(self) -> None:
        """Stop the worker threads (runs still going were cancelled by the core first)."""
        await asyncio.to_thread(self._pool.shutdown, wait=True)

    def _plan(self, params: Mapping[str, Any], labels: Mapping[str, str]) -> _Plan:
        playbook = str(params.get("playbook", ""))
        try:
            path = resolve_playbook(self._playbooks_dir, playbook)
        except PlaybookProblem as problem:
            raise ActionFailed(str(problem)) from None
        extravars = {str(k): str(v) for k, v in (params.get("extravars") or {}).items()}
        for name in extravars:  # params may come from storage: check again, never trust
            try:
                check_extravar_name(name)
            except ValueError as error:
                raise ActionFailed(str(error)) from None
        return _Plan(
            playbook=playbook,
            playbook_path=path,
            hosts=parse_hosts(params.get("hosts"), labels),
            extravars=extravars,
            options=self._options(params),
        )

    def _options(self, params: Mapping[str, Any]) -> list[str]:
        settings = self._settings
        options: list[str] = []
        if settings.connection:
            options += ["--connection", settings.connection]
        if settings.remote_user:
            options += ["--user", settings.remote_user]
        if settings.private_key_file:
            options += ["--private-key", str(settings.private_key_file)]
        if settings.forks:
            options += ["--forks", str(settings.forks)]
        if params.get("limit") is not None:
            options += ["--limit", check_limit(str(params["limit"]))]
        if params.get("tags"):
            options += ["--tags", ",".join(params["tags"])]
        if params.get("skip_tags"):
            options += ["--skip-tags", ",".join(params["skip_tags"])]
        if params.get("check_mode"):
            options.append("--check")
        return options

    def _run_blocking(
        self, plan: _Plan, request: ActionRequest, stop: threading.Event
    ) -> Outcome | None:
        """In a worker thread: prepare a private run dir and run ansible-playbook in it."""
        if stop.is_set():
            return None
        run_dir = self._new_run_dir(request)
        try:
            return self._run_in(run_dir, plan, stop)
        finally:
            with self._active_lock:
                self._active.discard(run_dir)

    def _new_run_dir(self, request: ActionRequest) -> Path:
        self._runs_dir.mkdir(parents=True, exist_ok=True)
        with self._active_lock:
            active = set(self._active)
        _prune(self._runs_dir, self._settings.keep_run_files.total_seconds(), active)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        prefix = f"{stamp}-job{request.job_id}-a{request.action_index}-t{request.attempt}-"
        run_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=self._runs_dir))  # mode 0700
        with self._active_lock:
            self._active.add(run_dir)
        return run_dir

    def _run_in(self, run_dir: Path, plan: _Plan, stop: threading.Event) -> Outcome:
        inputs = run_dir / "inputs"
        inputs.mkdir()
        (inputs / _INVENTORY_FILE).write_text(inventory_document(plan.hosts))
        if plan.extravars:
            (inputs / _EXTRAVARS_FILE).write_text(unsafe_vars_document(plan.extravars))
        # ansible-runner ignores a `settings` argument unless env/settings exists (2.4), so
        # the file is the one reliable way to shorten its cancel polling.
        (run_dir / "env").mkdir()
        (run_dir / "env" / "settings").write_text(
            json.dumps({"pexpect_timeout": _CANCEL_POLL_SECONDS})
        )

        def cancelled() -> bool:
            if not stop.is_set():
                return False
            stop_processes(str(run_dir), _TERM_GRACE_SECONDS)
            return True  # ansible-runner then SIGKILLs whatever is left of the group

        runner = ansible_runner.run(
            private_data_dir=str(run_dir),
            project_dir=str(self._playbooks_dir.resolve()),
            playbook=str(plan.playbook_path),
            # ansible-runner shlex-splits cmdline, so quoting keeps every value one argument.
            cmdline=shlex.join(plan.argv(inputs)),
            envvars=self._environment(),
            ident="run",
            quiet=True,
            suppress_env_files=True,  # keeps extra_env (possibly secrets) off the disk
            cancel_callback=cancelled,
        )
        return _outcome(runner)

    def _environment(self) -> dict[str, str]:
        env = {"ANSIBLE_NOCOLOR": "1"}
        # Prefer the ansible-playbook installed next to this Python (the service's venv).
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join(filter(None, [bin_dir, os.environ.get("PATH")]))
        env.update(self._settings.extra_env)
        return env


def _outcome(runner: Any) -> Outcome:
    stdout_path = Path(runner.config.artifact_dir) / "stdout"
    stdout = stdout_path.read_text(errors="replace") if stdout_path.exists() else ""
    return Outcome(
        rc=runner.rc,
        status=runner.status,
        stats=runner.stats,
        stdout=stdout,
        failures=failures_from_events(runner.events),
    )


def _describe(plan: _Plan) -> ActionResult:
    """What a run would do, for dry runs: nothing is written and nothing is started."""
    inputs = Path("<run dir>/inputs")
    command = ["ansible-playbook", *plan.argv(inputs), plan.playbook]
    label = run_label(plan.playbook, plan.hosts)
    output = "\n".join(
        [
            "command: " + shlex.join(command),
            f"{_INVENTORY_FILE}: {inventory_document(plan.hosts)}",
            f"{_EXTRAVARS_FILE} (values are !unsafe: never templated):",
            unsafe_vars_document(plan.extravars) if plan.extravars else "  (none)",
        ]
    )
    data = {"command": command, "hosts": plan.hosts, "extravars": plan.extravars}
    return ActionResult(summary=f"dry run: would run {label}", output=output, data=data)


def _prune(runs_dir: Path, keep_seconds: float, active: set[Path]) -> None:
    """Remove run dirs last changed more than `keep_seconds` ago, except running ones."""
    cutoff = time.time() - keep_seconds
    for entry in runs_dir.iterdir():
        try:
            old = entry.is_dir() and entry.stat().st_mtime < cutoff
        except OSError:  # another run pruned it first
            continue
        if old and entry not in active:
            shutil.rmtree(entry, ignore_errors=True)


def create(context: ExecutorContext) -> AnsibleExecutor:
    """The plugin factory: an executor for the service's playbooks dir and settings."""
    settings = context.settings
    if settings is None:
        settings = AnsibleSettings()
    elif not isinstance(settings, AnsibleSettings):
        raise PluginError(
            f"executors.ansible: expected AnsibleSettings, got {type(settings).__name__}"
        )
    return AnsibleExecutor(context.playbooks_dir, context.data_dir, settings)
