"""Alertmanager label matchers: `name="value"`, `name!="value"`, `name=~"re"`, `name!~"re"`.

Parsing follows Alertmanager's classic matcher parser (`pkg/labels/parse.go`), so a matcher that
works in an Alertmanager route works here unchanged:

- spaces around the name, the operator and the value are ignored;
- the value may be double-quoted, with Go escapes `\\"`, `\\\\` and `\\n`; any other backslash is
  kept literally, so `instance=~"db-\\d+"` means the regex `db-\\d+`;
- the value may also be left unquoted (`alertname=Foo`), as Alertmanager accepts;
- a label the alert does not carry has the value `""`, so `team=""` matches alerts without `team`
  and `team!=""` requires it.

Regexes are fully anchored, exactly like Alertmanager's `^(?:re)$`: `severity=~"crit"` does not
match `critical`.

Regexes run on Python's `re` module, not Go's RE2. The syntax rule authors use in practice
(classes, alternation, repetition, `(?i)`) behaves the same. Known differences, accepted:

- `re` also accepts look-around and back-references, which Alertmanager would reject;
- `re` backtracks, so a pathological pattern such as `(a+)+` can be slow on long label values;
  RE2 runs in linear time. Keep rule regexes simple;
- `\\d`, `\\w`, `\\s` and `\\b` are compiled ASCII-only (`re.ASCII`) to match RE2, but `(?i)` folds
  ASCII letters only, where RE2 folds all of Unicode;
- inline flags such as `(?i)` must open the pattern; RE2 also accepts them in the middle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = ["OPERATORS", "Matcher", "MatcherSyntaxError", "parse_matcher"]

OPERATORS: Final = ("=", "!=", "=~", "!~")
ACCEPTED_FORM: Final = 'use name="value", name!="value", name=~"regex" or name!~"regex"'

# Alertmanager's own pattern, with the label name narrowed to a Prometheus label name.
# The operator alternation order matters: `=~` must be tried before `=`.
_MATCHER = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|=|!=|!~)\s*(.*?)\s*$", re.DOTALL)
_NAME_THEN_OPERATOR = re.compile(r"^\s*(\S*?)\s*(=~|=|!=|!~)")
_ESCAPES: Final = {"n": "\n", '"': '"', "\\": "\\"}


class MatcherSyntaxError(ValueError):
    """A matcher string is not in Alertmanager's syntax; the message shows the accepted form."""

    def __init__(self, text: str, reason: str, *, show_form: bool = True) -> None:
        self.text = text
        self.reason = reason
        form = f"; {ACCEPTED_FORM}" if show_form else ""
        super().__init__(f"invalid matcher {text!r}: {reason}{form}")


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label condition. Build it with `parse_matcher` or directly; regexes compile once."""

    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise MatcherSyntaxError(str(self), f"unknown operator {self.op!r}")
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "_regex", _compile_regex(self.name, self.op, self.value))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether `labels` satisfies this matcher; a missing label counts as `""`."""
        actual = labels.get(self.name, "")
        if self._regex is not None:
            return (self._regex.fullmatch(actual) is not None) == (self.op == "=~")
        return (actual == self.value) == (self.op == "=")

    def __str__(self) -> str:
        """The canonical form Alertmanager prints, e.g. `severity=~"critical|warning"`."""
        return f'{self.name}{self.op}"{_quote(self.value)}"'


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher such as `severity=~"critical|warning"`.

    Raises `MatcherSyntaxError` saying what is wrong and showing the accepted form.
    """
    found = _MATCHER.match(text)
    if found is None:
        raise MatcherSyntaxError(text, _explain_bad_shape(text))
    name, op, raw = found.groups()
    return Matcher(name, op, _unquote(text, raw))


def _explain_bad_shape(text: str) -> str:
    if not text.strip():
        return "it is empty"
    head = _NAME_THEN_OPERATOR.match(text)
    if head is None:
        return "no operator found"
    if not head.group(1):
        return "the label name is missing before the operator"
    return f"{head.group(1)!r} is not a valid label name (letters, digits and _, not first digit)"


def _unquote(text: str, raw: str) -> str:
    """Undo Go-style quoting exactly as Alertmanager's parser does."""
    quoted = raw.startswith('"')
    body = raw[1:] if quoted else raw
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            following = body[index + 1]
            # An unknown escape such as `\d` keeps its backslash, so regexes survive unquoting.
            out.append(_ESCAPES.get(following, "\\" + following))
            index += 2
            continue
        if char == '"':
            if not quoted or index != len(body) - 1:
                raise MatcherSyntaxError(text, 'the value contains an unescaped " (write \\")')
            quoted = False  # the closing quote
        else:
            out.append(char)
        index += 1
    if quoted:
        raise MatcherSyntaxError(text, 'the value has an opening " but no closing "')
    return "".join(out)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _compile_regex(name: str, op: str, value: str) -> re.Pattern[str]:
    try:
        # matches() uses fullmatch(), which anchors both ends like Alertmanager's ^(?:re)$.
        # Not wrapped in (?:...) here: Python only accepts `(?i)` at the very start.
        return re.compile(value, re.ASCII)
    except re.error as error:
        text = f'{name}{op}"{_quote(value)}"'
        reason = f"invalid regular expression: {error}"
        raise MatcherSyntaxError(text, reason, show_form=False) from None
