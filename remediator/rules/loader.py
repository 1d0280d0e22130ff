"""Find, parse, validate and compile rule files into one immutable `RuleSet`.

Every problem in every file is collected before giving up, so one `remediator check` run shows
them all, each as `file:line: message` like `promtool check rules`. The line is that of the
offending YAML node; it is 0 only when the problem is not inside a file (a pattern that matches
nothing, a file that cannot be read).
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import yaml
from pydantic import ValidationError

from remediator.errors import Problem, RuleLoadError
from remediator.rules.compiled import CompiledRule, RuleSet, compile_rule
from remediator.rules.model import RuleFile
from remediator.rules.problems import validation_problems, yaml_problem
from remediator.yaml_lines import YamlDocument, parse_yaml

__all__ = ["check_rule_files", "load_rule_set", "resolve_rule_files"]

RULE_FILE_SUFFIXES: Final = (".yml", ".yaml")
_GLOB_CHARS: Final = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class RuleFilePath:
    """A rule file to load: where it is, and how to name it in messages."""

    path: Path
    shown: str


@dataclass(slots=True)
class _FileResult:
    text: str = ""
    rules: list[CompiledRule] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    names: list[tuple[str, str, int]] = field(default_factory=list)  # name, file, line


def load_rule_set(patterns: Sequence[str], base_dir: Path) -> RuleSet:
    """Load every rule file `patterns` names; raise RuleLoadError listing every problem."""
    rule_set, problems = check_rule_files(patterns, base_dir)
    if rule_set is None:
        raise RuleLoadError(problems)
    return rule_set


def check_rule_files(
    patterns: Sequence[str], base_dir: Path
) -> tuple[RuleSet | None, list[Problem]]:
    """Like `load_rule_set`, but return (None, problems) instead of raising.

    A pattern is a file, a directory (its *.yml and *.yaml files, sorted, not recursive) or a
    glob; relative patterns are resolved against `base_dir`. Files load in the order given,
    each once.
    """
    files, problems = resolve_rule_files(patterns, base_dir)
    results = [_check_file(file) for file in files]
    file_problems = [problem for result in results for problem in result.problems]
    file_problems.extend(_duplicate_names(results))
    order = {file.shown: index for index, file in enumerate(files)}
    problems.extend(sorted(file_problems, key=lambda p: (order.get(p.file, -1), p.line)))
    if problems:
        return None, problems
    rules = tuple(rule for result in results for rule in result.rules)
    shown = tuple(file.shown for file in files)
    version = rules_version(zip(shown, (result.text for result in results), strict=True))
    return RuleSet(rules=rules, files=shown, version=version), []


def rules_version(files: Iterable[tuple[str, str]]) -> str:
    """A short hash of the rule files' names and contents, in load order: replicas that run
    the same rules report the same version."""
    digest = hashlib.sha256()
    for name, text in files:
        digest.update(f"{len(name)}:{name}{len(text)}:".encode())
        digest.update(text.encode())
    return digest.hexdigest()[:12]


def resolve_rule_files(
    patterns: Sequence[str], base_dir: Path
) -> tuple[list[RuleFilePath], list[Problem]]:
    """The files `patterns` name, deduplicated, and a problem for each pattern matching none."""
    files: list[RuleFilePath] = []
    seen: set[Path] = set()
    problems: list[Problem] = []
    for pattern in patterns:
        matched = _expand(pattern, base_dir)
        if not matched:
            where = "" if Path(pattern).is_absolute() else f" (relative to {base_dir})"
            problems.append(Problem(pattern, 0, f"no rule files match {pattern!r}{where}"))
        for path in matched:
            if path.resolve() not in seen:
                seen.add(path.resolve())
                files.append(RuleFilePath(path, _shown(path, base_dir)))
    return files, problems


def _expand(pattern: str, base_dir: Path) -> list[Path]:
    full = base_dir / Path(pattern).expanduser()  # an absolute pattern replaces base_dir
    if _GLOB_CHARS.intersection(pattern):
        return sorted(Path(p) for p in glob.glob(str(full), recursive=True) if Path(p).is_file())
    if full.is_dir():
        return sorted(p for p in full.iterdir() if p.suffix in RULE_FILE_SUFFIXES and p.is_file())
    return [full] if full.is_file() else []


def _shown(path: Path, base_dir: Path) -> str:
    """The shorter of the absolute path and the one relative to base_dir."""
    absolute = str(path.absolute())
    try:
        relative = os.path.relpath(path, base_dir)
    except ValueError:  # another drive on Windows
        return absolute
    return relative if len(relative) <= len(absolute) else absolute


def _check_file(file: RuleFilePath) -> _FileResult:
    result = _FileResult()
    try:
        text = file.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        result.problems.append(Problem(file.shown, 0, f"cannot read rule file: {error}"))
        return result
    result.text = text
    try:
        doc = parse_yaml(text)
    except yaml.YAMLError as error:
        result.problems.append(yaml_problem(file.shown, error))
        return result
    result.problems.extend(
        Problem(file.shown, line, f'duplicate key "{key}"; each key may appear once')
        for line, key in doc.duplicate_keys()
    )
    _validate(file, doc, result)
    result.names.extend(_rule_names(file, doc))
    return result


def _validate(file: RuleFilePath, doc: YamlDocument, result: _FileResult) -> None:
    if doc.data is None:
        message = "the file is empty; a rule file needs a top-level `rules:` list"
        result.problems.append(Problem(file.shown, 1, message))
        return
    if not isinstance(doc.data, dict):
        message = "the top level must be a mapping with a `rules:` list"
        result.problems.append(Problem(file.shown, doc.line_of(()), message))
        return
    try:
        rule_file = RuleFile.model_validate(doc.data)
    except ValidationError as error:
        result.problems.extend(validation_problems(file.shown, doc, error))
        return
    for index, rule in enumerate(rule_file.rules):
        source = f"{file.shown}:{doc.line_of(('rules', index))}"
        result.rules.append(compile_rule(rule, source))


def _rule_names(file: RuleFilePath, doc: YamlDocument) -> list[tuple[str, str, int]]:
    """Names taken from the raw data, so duplicates show even when a file has other errors."""
    rules = doc.data.get("rules") if isinstance(doc.data, dict) else None
    if not isinstance(rules, list):
        return []
    return [
        (rule["name"], file.shown, doc.line_of(("rules", index, "name")))
        for index, rule in enumerate(rules)
        if isinstance(rule, dict) and isinstance(rule.get("name"), str)
    ]


def _duplicate_names(results: Sequence[_FileResult]) -> list[Problem]:
    """A problem at every repeat of a rule name, pointing back at its first definition."""
    first: dict[str, str] = {}
    problems: list[Problem] = []
    for name, file, line in (entry for result in results for entry in result.names):
        if name not in first:
            first[name] = f"{file}:{line}"
            continue
        message = (
            f"duplicate rule name {name!r}, first defined at {first[name]}; "
            "rule names must be unique across all rule files"
        )
        problems.append(Problem(file, line, message))
    return problems
