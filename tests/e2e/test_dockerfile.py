"""The Dockerfile's steps, replayed without Docker (which cannot run here). SLOW: 1-3 minutes,
it builds every dependency's wheel from PyPI; bounded by REPLAY_TIMEOUT (8 minutes).

Each instruction is parsed and replayed in tmp_path, one directory per stage standing for
its root filesystem (`/wheels` of the build stage is `<tmp>/build/wheels`):

- FROM python:3.11-slim: a fresh virtualenv of this interpreter per stage (`python -m venv`);
  `pip` in a RUN is that venv's pip. The base image itself is not used: same Python minor
  version only if this interpreter is 3.11, and Debian's libraries are this machine's.
- COPY: exactly the paths named, from the repository (the build context) or from the build
  stage (`--from=build`), into the stage's directories; the build runs in a copy holding
  nothing else, so a file the build needs but COPY forgot fails here as it would in Docker.
- RUN: `pip wheel …` and `pip install …` run as written (paths mapped, globs expanded),
  except that the install adds `--no-index`: the wheels the build stage made must be all
  the image needs. `rm -rf` runs. `useradd` cannot run (it needs root and changes this
  machine): its `--home-dir` is created, which is what the image's user owns.
- USER: cannot switch users here. Instead, after the service ran, nothing may have been
  written outside that home directory, which is all the image's non-root user may write.
- ENV: set for the service, paths mapped (the SQLite file lands in the mapped home).
- EXPOSE: the port the image's listen address, ENTRYPOINT and HEALTHCHECK use; here the
  service listens on a free 127.0.0.1 port (REMEDIATOR_LISTEN) and the HEALTHCHECK command
  is run with that port instead.
- ENTRYPOINT + CMD: `remediator serve` from the second venv, cwd = the mapped WORKDIR (with
  its copied rules/ and playbooks/). The HEALTHCHECK command runs until it exits 0; then
  the shipped rules must be loaded (GET /api/v1/rules), and SIGTERM must end it with 0.

An instruction or RUN command this replay does not know fails the test, naming it.
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from remediator.config import Config
from tests.conftest import REPO
from tests.e2e.conftest import LOOPBACK, child_env, free_port, log_tail

pytestmark = pytest.mark.e2e

REPLAY_TIMEOUT = 8 * 60.0  # the whole test, building wheels from PyPI included
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0  # serve drains for up to 10 s


@dataclass
class Stage:
    """One FROM … of the Dockerfile: its root directory, virtualenv and state."""

    name: str
    root: Path
    venv: Path
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    user: str = "root"
    home: str | None = None
    expose: list[int] = field(default_factory=list)
    healthcheck: str | None = None
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)

    def path(self, image_path: str) -> Path:
        """Where a path of the image's filesystem is here (relative: to WORKDIR)."""
        absolute = image_path if image_path.startswith("/") else f"{self.workdir}/{image_path}"
        return self.root / os.path.normpath(absolute).lstrip("/")

    def map_text(self, text: str) -> str:
        """Image paths in a value (ENV) pointing into this stage's directory instead."""
        for top in ("/var/", "/etc/", "/wheels", "/src"):
            text = text.replace(top, f"{self.root}{top}")
        return text


def instructions(dockerfile: Path) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; comments dropped, continuation lines joined."""
    logical = ""
    for line in dockerfile.read_text().splitlines():
        if not logical and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, rest = logical.strip().partition(" ")
        yield keyword.upper(), rest.strip()
        logical = ""


class Replay:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.stages: dict[str, Stage] = {}
        self.stage: Stage | None = None
        self.deadline = time.monotonic() + REPLAY_TIMEOUT
        self.log = tmp_path / "replay.log"

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"replay exceeded {REPLAY_TIMEOUT:.0f}s:\n{log_tail(self.log)}")
        return left

    def run(self, command: list[str], cwd: Path) -> None:
        with self.log.open("a") as out:
            out.write(f"$ {shlex.join(command)}  (in {cwd})\n")
            out.flush()
            try:
                code = subprocess.run(
                    command,
                    cwd=cwd,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=child_env(),
                    timeout=self.remaining(),
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired:
                code = None
        if code != 0:
            pytest.fail(f"{shlex.join(command)} failed ({code}):\n{log_tail(self.log)}")

    def current(self) -> Stage:
        assert self.stage is not None, "an instruction before FROM"
        return self.stage

    # -- instructions ----------------------------------------------------------------------

    def apply(self, keyword: str, args: str) -> None:
        handler = getattr(self, f"do_{keyword.lower()}", None)
        if handler is None:
            pytest.fail(f"Dockerfile instruction {keyword} {args!r}: this replay cannot run it")
        handler(args)

    def do_from(self, args: str) -> None:
        words = args.split()
        name = words[2] if len(words) == 3 and words[1].upper() == "AS" else f"#{len(self.stages)}"
        root = self.tmp_path / name.lstrip("#")
        root.mkdir()
        venv = self.tmp_path / f"venv-{name.lstrip('#')}"
        self.run([sys.executable, "-m", "venv", str(venv)], self.tmp_path)
        self.stage = self.stages[name] = Stage(name, root, venv)

    def do_workdir(self, args: str) -> None:
        stage = self.current()
        stage.workdir = os.path.normpath(f"{stage.workdir}/{args}")
        stage.path(".").mkdir(parents=True, exist_ok=True)

    def do_copy(self, args: str) -> None:
        stage = self.current()
        words = shlex.split(args)
        if words[0].startswith("--from="):
            source_stage = self.stages[words.pop(0).removeprefix("--from=")]
            sources = [source_stage.path(word) for word in words[:-1]]
        else:
            assert not words[0].startswith("--"), f"COPY option {words[0]} not replayed"
            sources = [REPO / word for word in words[:-1]]
        destination = words[-1]
        target = stage.path(destination)
        into_dir = destination.endswith("/") or len(sources) > 1
        for source in sources:
            assert source.exists(), f"COPY {source}: not in the build context"
            to = target / source.name if into_dir else target
            to.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():  # its contents, as Docker does (there is no .dockerignore)
                shutil.copytree(source, to, dirs_exist_ok=True)
            else:
                shutil.copy2(source, to)

    def do_run(self, args: str) -> None:
        stage = self.current()
        for part in args.split("&&"):
            words = shlex.split(part)
            program, rest = words[0], words[1:]
            if program == "pip":
                self.pip(stage, rest)
            elif program == "rm" and rest[0] == "-rf":
                for pattern in rest[1:]:
                    shutil.rmtree(stage.path(pattern))
            elif program == "useradd":
                # Needs root and would change this machine; the home directory is the part
                # the image's later steps (USER, the SQLite ENV path) rely on.
                home = rest[rest.index("--home-dir") + 1]
                assert "--create-home" in rest
                stage.home = home
                stage.path(home).mkdir(parents=True)
            else:
                pytest.fail(f"RUN {part.strip()!r}: this replay cannot run {program}")

    def pip(self, stage: Stage, args: list[str]) -> None:
        mapped: list[str] = []
        for arg in args:
            if arg.startswith("/") and glob.has_magic(arg):
                hits = sorted(glob.glob(str(stage.path(arg))))
                assert hits, f"pip {arg}: nothing matches"
                mapped += hits
            elif arg.startswith("/"):
                mapped.append(str(stage.path(arg)))
            else:
                mapped.append(arg)
        if args[0] == "install":
            mapped.insert(1, "--no-index")
        self.run([str(stage.venv / "bin" / "python"), "-m", "pip", *mapped], stage.path("."))

    def do_env(self, args: str) -> None:
        stage = self.current()
        key, _, value = args.partition("=")
        assert value, f"ENV {args!r}: only the KEY=value form is replayed"
        stage.env[key] = stage.map_text(value)

    def do_user(self, args: str) -> None:
        self.current().user = args

    def do_expose(self, args: str) -> None:
        self.current().expose.append(int(args.split("/")[0]))

    def do_healthcheck(self, args: str) -> None:
        _, _, command = args.partition("CMD ")
        assert command, f"HEALTHCHECK {args!r}: no CMD"
        self.current().healthcheck = command

    def do_entrypoint(self, args: str) -> None:
        self.current().entrypoint = json.loads(args)

    def do_cmd(self, args: str) -> None:
        self.current().cmd = json.loads(args)


def files(root: Path, skip: Path) -> set[Path]:
    return {p for p in root.rglob("*") if not p.is_relative_to(skip)}


def healthy(command: str, port: int, env: dict[str, str]) -> bool:
    try:
        result = subprocess.run(
            ["sh", "-c", command.replace(":9095/", f":{port}/")],
            env=env,
            capture_output=True,
            timeout=3,  # HEALTHCHECK --timeout=3s
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def test_dockerfile_steps_build_and_run_the_service(tmp_path: Path) -> None:
    replay = Replay(tmp_path)
    for keyword, args in instructions(REPO / "Dockerfile"):
        replay.apply(keyword, args)
    image = replay.current()

    assert image.user != "root"
    assert image.home is not None
    assert image.expose == [9095]
    assert image.healthcheck is not None
    assert ":9095/healthz" in image.healthcheck
    assert image.entrypoint + image.cmd == ["remediator", "serve"]
    # With no config, the image listens where EXPOSE and HEALTHCHECK say.
    assert Config().host_port == ("0.0.0.0", image.expose[0])  # noqa: S104

    workdir = image.path(".")
    home = image.path(image.home)
    assert image.env["REMEDIATOR_DATABASE_URL"].endswith(f"{home}/remediator.db")
    before = files(image.root, home)

    port = free_port()
    bin_dir = image.venv / "bin"
    env = {
        **child_env(),
        **image.env,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "REMEDIATOR_LISTEN": f"{LOOPBACK}:{port}",
    }
    command = [str(bin_dir / image.entrypoint[0]), *image.entrypoint[1:], *image.cmd]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + min(START_TIMEOUT, replay.remaining())
        while not healthy(image.healthcheck, port, env):
            assert process.poll() is None, f"serve exited {process.returncode}:\n{log_tail(log)}"
            if time.monotonic() > deadline:
                pytest.fail(
                    f"HEALTHCHECK never passed within {START_TIMEOUT:.0f}s:\n{log_tail(log)}"
                )
            time.sleep(0.2)
        # Ready: the migrations the wheel carries ran, and WORKDIR's rules/ loaded.
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/readyz", timeout=5) as response:
            assert response.status == 200
        rules_url = f"http://{LOOPBACK}:{port}/api/v1/rules"
        with urllib.request.urlopen(rules_url, timeout=5) as response:
            loaded = {rule["name"] for rule in json.load(response)["rules"]}
        shipped = {
            rule["name"]
            for path in (REPO / "rules").glob("*.yml")
            for rule in yaml.safe_load(path.read_text())["rules"]
        }
        assert loaded == shipped, "WORKDIR's rules/ were not the ones served"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"serve did not stop within {STOP_TIMEOUT:.0f}s:\n{log_tail(log)}")
    text = log.read_text(errors="replace")
    assert code == 0, f"serve exited {code} after SIGTERM:\n{text}"
    assert "Traceback" not in text, text
    assert (home / "remediator.db").is_file()
    # What the non-root user could not have written: anything outside its home.
    assert files(image.root, home) == before
