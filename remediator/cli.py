"""The `remediator` command. argv in, exit code out; the work lives in the modules it calls."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from remediator import __version__
from remediator.config import CONFIG_ENV, Config, load_config
from remediator.errors import FileProblemsError, Problem
from remediator.guards import cli as guards_cli


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except FileProblemsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remediator", description=__doc__)
    parser.add_argument("--version", action="version", version=f"remediator {__version__}")
    sub = parser.add_subparsers(required=True, metavar="command")

    serve = sub.add_parser("serve", help="run the service")
    _config_option(serve)
    serve.set_defaults(func=_serve)

    check = sub.add_parser("check", help="validate config, rule files and playbooks")
    _config_option(check)
    check.add_argument("rule_files", nargs="*", help="check these rule files instead of config's")
    check.set_defaults(func=_check)

    test = sub.add_parser("test", help="run rule unit tests (like promtool test rules)")
    _config_option(test)
    test.add_argument("test_files", nargs="+", type=Path, help="rule test files (YAML)")
    test.set_defaults(func=_test)

    schema = sub.add_parser("schema", help="print a JSON Schema for editors")
    schema.add_argument("which", nargs="?", choices=["rules", "config"], default="rules")
    schema.set_defaults(func=_schema)

    guards_cli.add_parser(sub)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(required=True, metavar="action")
    upgrade = db_sub.add_parser("upgrade", help="apply schema migrations")
    _config_option(upgrade)
    upgrade.set_defaults(func=_db_upgrade)
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=None, help=f"config file (default: ${CONFIG_ENV})"
    )


def _load(args: argparse.Namespace) -> Config:
    path = args.config or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    return load_config(path)


def _serve(args: argparse.Namespace) -> int:
    from remediator.app import create_app

    config = _load(args)
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    host, port = config.host_port
    app = create_app(config, handle_sighup=True)
    access_log = logging.getLogger("aiohttp.access") if config.log_level == "debug" else None
    # run_app turns SIGTERM/SIGINT into a graceful stop: no new connections, in-flight
    # requests finish (up to shutdown_timeout), then every cleanup_ctx closes.
    web.run_app(
        app,
        host=host,
        port=port,
        shutdown_timeout=10,
        access_log=access_log,
        print=lambda msg: logging.getLogger("remediator").info(msg.strip()),
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    from remediator.rules import check_rule_files

    problems: list[Problem] = []
    try:
        config = _load(args)
    except FileProblemsError as exc:
        problems.extend(exc.problems)
        config = Config()
    patterns = args.rule_files or config.rules
    base = Path.cwd() if args.rule_files else config.base_dir
    rule_set, rule_problems = check_rule_files(patterns, base)
    problems.extend(rule_problems)
    if rule_set is not None:
        from remediator.escalation.channels import channel_problems
        from remediator.remediation.executors import action_problems
        from remediator.remediation.verification import verification_problems

        problems.extend(asyncio.run(action_problems(config, rule_set)))
        problems.extend(asyncio.run(verification_problems(config, rule_set)))
        problems.extend(asyncio.run(channel_problems(config)))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"FAILED: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    count = len(rule_set.rules) if rule_set else 0
    print(f"SUCCESS: {count} rules found")
    return 0


def _test(args: argparse.Namespace) -> int:
    from remediator.rules.testing import run_rule_tests

    # The config only decides priorities (severity map, default); without one, defaults.
    config = _load(args) if args.config or os.environ.get(CONFIG_ENV) else Config()
    report = run_rule_tests(args.test_files, config.priorities, config.guards)
    for failure in report.failures:
        print(failure, file=sys.stderr)
    failed = len({(f.file, f.line) for f in report.failures})
    if failed:
        print(f"FAILED: {failed} of {report.tests} tests in {report.files} files", file=sys.stderr)
        return 1
    print(f"SUCCESS: {report.tests} tests in {report.files} files")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from remediator.rules import rule_file_json_schema

    schema = rule_file_json_schema() if args.which == "rules" else Config.model_json_schema()
    print(json.dumps(schema, indent=2))
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from remediator.store import migrate
    from remediator.store.database import Database

    config = _load(args)

    async def run() -> str | None:
        db = Database(config.database_url)
        try:
            await migrate.upgrade(db)
            return await migrate.current_revision(db)
        finally:
            await db.dispose()

    revision = asyncio.run(run())
    print(f"database at schema revision {revision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
