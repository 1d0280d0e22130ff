"""Run the shipped playbooks for real with ansible-playbook against localhost.

Nothing here touches the machine outside the test's tmp_path: every directory a playbook
cleans points into it, `remediator_become` is false, and the systemd, chrony and timedatectl
commands a playbook runs are fakes put first on PATH (this container, like most CI runners,
has no systemd to restart things in). The fakes record every call, so tests can assert what
a playbook asked systemd to do, and what it never asked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
RECAP = re.compile(r"^localhost\s*:\s*(?P<counts>(?:\w+=\d+\s*)+)$", re.MULTILINE)


@dataclass(frozen=True)
class Run:
    """One ansible-playbook run: exit code, everything it printed, and its PLAY RECAP."""

    rc: int
    output: str

    @property
    def recap(self) -> dict[str, int]:
        match = RECAP.search(self.output)
        assert match, f"no PLAY RECAP in output:\n{self.output}"
        pairs = (item.split("=") for item in match["counts"].split())
        return {key: int(value) for key, value in pairs}

    def ok(self) -> Run:
        """Assert the play succeeded; returns self for chaining."""
        assert self.rc == 0, self.output
        assert self.recap["failed"] == 0, self.output
        return self

    def failed(self) -> Run:
        """Assert the play failed on the host (not a usage error); returns self."""
        assert self.rc == 2, self.output
        assert self.recap["failed"] == 1, self.output
        return self


class RunPlaybook(Protocol):
    def __call__(
        self, playbook: str, extravars: dict[str, Any], *args: str, vars_text: str | None = None
    ) -> Run: ...


@pytest.fixture
def ansible_env(tmp_path: Path) -> dict[str, str]:
    """Environment for ansible-playbook that writes nothing outside tmp_path."""
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.fail(f"{ANSIBLE_PLAYBOOK} is missing: ansible-core is a dependency")
    home = tmp_path / "ansible-home"
    home.mkdir()
    config = home / "ansible.cfg"
    config.write_text("[defaults]\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_REMOTE_TEMP=str(home / "remote-tmp"),
        ANSIBLE_LOCALHOST_WARNING="False",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_PIPELINING="True",
        ANSIBLE_RETRY_FILES_ENABLED="False",
    )
    return env


@pytest.fixture
def run_playbook(tmp_path: Path, ansible_env: dict[str, str]) -> RunPlaybook:
    """Run playbooks/<playbook> on localhost with -c local and `-e @vars.json`."""
    counter = iter(range(1_000_000))

    def run(
        playbook: str, extravars: dict[str, Any], *args: str, vars_text: str | None = None
    ) -> Run:
        varsfile = tmp_path / f"vars-{next(counter)}.{'yml' if vars_text else 'json'}"
        varsfile.write_text(vars_text if vars_text is not None else json.dumps(extravars))
        argv = [
            str(ANSIBLE_PLAYBOOK),
            *("-i", "localhost,", "-c", "local"),
            str(PLAYBOOKS / playbook),
            *("-e", f"@{varsfile}"),
            *args,
        ]
        proc = subprocess.run(
            argv,
            cwd=tmp_path,
            env=ansible_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Run(proc.returncode, proc.stdout + proc.stderr)

    return run


FAKE_SYSTEMCTL = """\
#!{python}
# A stand-in for systemctl: units live in units.json, every call goes to calls.jsonl.
import json, sys, time
from pathlib import Path

state = Path({state!r})
units_file = state / "units.json"
args = sys.argv[1:]
with open(state / "calls.jsonl", "a") as log:
    log.write(json.dumps(["systemctl", *args]) + "\\n")
units = json.loads(units_file.read_text())


def canonical(name):
    return name if "." in name else name + ".service"


def current(name):
    unit = units.get(canonical(name))
    if unit is None:
        return {{"Id": canonical(name), "LoadState": "not-found", "ActiveState": "inactive",
                "SubState": "dead", "NRestarts": "0", "MemoryCurrent": "[not set]"}}
    props = {{"Id": canonical(name), "NRestarts": "0", "SubState": "running", **unit}}
    props.pop("crash", None); props.pop("restarted_at", None)
    # A unit that crashes: half a second after each (re)start systemd restarts it again.
    if unit.get("crash") and unit.get("restarted_at") and time.time() - unit["restarted_at"] > 0.5:
        props["ActiveState"], props["SubState"] = "activating", "auto-restart"
        props["NRestarts"] = str(int(props["NRestarts"]) + 1)
    return props


verb, rest = args[0], [a for a in args[1:] if a != "--"]
if verb == "show":
    wanted, value_only, names, i = [], False, [], 0
    while i < len(rest):
        if rest[i] == "-p":
            wanted += rest[i + 1].split(","); i += 2; continue
        if rest[i] == "--value":
            value_only = True
        else:
            names.append(rest[i])
        i += 1
    for n, name in enumerate(names):
        if n:
            print()  # systemctl separates units by an empty line
        props = current(name)
        for key in wanted or list(props):
            value = props.get(key, "")
            print(value if value_only else f"{{key}}={{value}}")
elif verb in ("restart", "start", "reload", "stop"):
    name = canonical(rest[0])
    if name not in units:
        print(f"Failed to {{verb}} {{name}}: Unit {{name}} not found.", file=sys.stderr)
        sys.exit(5)
    if verb != "reload":
        units[name]["ActiveState"] = "inactive" if verb == "stop" else "active"
        units[name]["restarted_at"] = time.time()
        units[name]["MemoryCurrent"] = "52428800"
    units_file.write_text(json.dumps(units))
elif verb == "is-active":
    state_ = current(rest[0])["ActiveState"]
    print(state_)
    sys.exit(0 if state_ == "active" else 3)
else:
    print(f"fake systemctl: unsupported {{args}}", file=sys.stderr)
    sys.exit(1)
"""

FAKE_TOOL = """\
#!{python}
# A stand-in for {name}: records the call, prints {name}.out, exits with {name}.rc.
import json, sys
from pathlib import Path

state = Path({state!r})
with open(state / "calls.jsonl", "a") as log:
    log.write(json.dumps([{name!r}, *sys.argv[1:]]) + "\\n")
out, rc = state / "{name}.out", state / "{name}.rc"
print(out.read_text() if out.exists() else "", end="")
sys.exit(int(rc.read_text()) if rc.exists() else 0)
"""


@dataclass
class FakeHost:
    """Fake systemctl, chronyc and timedatectl first on PATH, with their state and call log."""

    bin: Path
    state: Path

    def units(self, **units: dict[str, Any]) -> None:
        """Define the units that exist, e.g. units(**{"nginx.service": {...}})."""
        (self.state / "units.json").write_text(json.dumps(units))

    def unit(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.state / "units.json").read_text())[name]
        return data

    def answer(self, tool: str, out: str, rc: int = 0) -> None:
        (self.state / f"{tool}.out").write_text(out)
        (self.state / f"{tool}.rc").write_text(str(rc))

    def calls(self, tool: str | None = None) -> list[list[str]]:
        log = self.state / "calls.jsonl"
        if not log.exists():
            return []
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        return [call for call in calls if tool is None or call[0] == tool]

    def actions(self) -> list[list[str]]:
        """systemctl calls that change something (everything but show/is-active)."""
        return [c for c in self.calls("systemctl") if c[1] not in ("show", "is-active")]


@pytest.fixture
def fake_host(tmp_path: Path, ansible_env: dict[str, str]) -> FakeHost:
    fake = FakeHost(bin=tmp_path / "fake-bin", state=tmp_path / "fake-state")
    fake.bin.mkdir()
    fake.state.mkdir()
    fake.units()
    scripts = {"systemctl": FAKE_SYSTEMCTL.format(python=sys.executable, state=str(fake.state))}
    for tool in ("chronyc", "timedatectl"):
        scripts[tool] = FAKE_TOOL.format(python=sys.executable, state=str(fake.state), name=tool)
    for name, script in scripts.items():
        path = fake.bin / name
        path.write_text(script)
        path.chmod(0o755)
    ansible_env["PATH"] = f"{fake.bin}{os.pathsep}{ansible_env.get('PATH', '')}"
    return fake
