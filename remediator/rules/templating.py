"""Rule templates (incident titles, log messages): compile once at load, render per alert.

Templates are Jinja2, rendered in the sandbox of `sandbox.py`. What a template can see is
`render_context()`: `labels`, `annotations`, `alert` and `incident`, e.g.
`{{ labels.namespace }}/{{ labels.pod }} is crash looping`.

Label and annotation values are data only: they are inserted into the output as they are and
never compiled, so a label value `{{ 7*7 }}` renders as the text `{{ 7*7 }}`.

Undefined names are errors (StrictUndefined), so a typo or a label the alert lacks is reported,
not silently rendered as "". Write `{{ labels.team | default("none") }}` where a label is
optional. Labels whose name clashes with a dict method (`items`, `keys`, `values`, `get`) must
be read as `labels["items"]`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import jinja2
from jinja2.exceptions import SecurityError

from remediator.errors import RemediatorError
from remediator.rules.sandbox import MAX_OUTPUT_CHARS, RuleTemplateEnvironment, environment

__all__ = [
    "Template",
    "TemplateError",
    "compile_template",
    "render_context",
    "render_params",
]

Dialect = Literal["text", "promql"]


def promql_string(value: Any) -> str:
    """`value` as a PromQL double-quoted string literal: it can only ever be data.

    PromQL strings follow Go's escapes; JSON's are a subset of them (non-ASCII kept as is).
    """
    return json.dumps(str(value), ensure_ascii=False)


_ENVIRONMENTS: Final[dict[str, RuleTemplateEnvironment]] = {
    "text": environment,
    "promql": RuleTemplateEnvironment(finalize=promql_string),
}
_SHOWN_SOURCE_CHARS: Final = 80
_OPTIONAL_HINT: Final = "; if the alert may lack it, write e.g. {{ labels.name | default('') }}"
_NAMES_HINT: Final = "; a template can use labels, annotations, alert and incident"


class TemplateError(RemediatorError):
    """A rule template does not compile, or failed to render for one alert."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        shown = source if len(source) <= _SHOWN_SOURCE_CHARS else source[:_SHOWN_SOURCE_CHARS] + "…"
        super().__init__(f"template {shown!r}: {reason}")


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template; equal when the source is equal. Construction raises TemplateError."""

    source: str
    dialect: Dialect = "text"
    """`text` inserts values as they are; `promql` quotes each `{{ … }}` value as a PromQL
    string literal (see `remediator.rules.promql`)."""
    _compiled: jinja2.Template = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", _compile(self.source, self.dialect))

    def render(self, context: Mapping[str, Any]) -> str:
        """Render with `context` (see `render_context`); any failure is a TemplateError."""
        try:
            return _join_bounded(self.source, self._compiled.generate(dict(context)))
        except TemplateError:
            raise
        except jinja2.UndefinedError as error:
            raise TemplateError(self.source, _explain_undefined(error)) from None
        except SecurityError as error:
            raise TemplateError(self.source, f"refused by the sandbox: {error}") from None
        except Exception as error:  # templates must never crash the caller
            reason = f"{type(error).__name__}: {error}"
            raise TemplateError(self.source, f"failed to render: {reason}") from None


def compile_template(source: str, dialect: Dialect = "text") -> Template:
    """Compile `source`; raises TemplateError naming the syntax error and its line."""
    return Template(source, dialect)


def render_context(
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    alert: Mapping[str, Any],
    incident: Mapping[str, Any],
) -> dict[str, Any]:
    """The names a template sees. Copies into plain dicts so templates get plain data."""
    return {
        "labels": dict(labels),
        "annotations": dict(annotations),
        "alert": dict(alert),
        "incident": dict(incident),
    }


def render_params(params: Any, context: Mapping[str, Any]) -> Any:
    """A compiled action's parameters as plain data: every `Template` rendered to a string.

    Mappings become dicts and tuples lists, so the result is JSON-ready. Rendered values are
    strings and stay strings: they are never parsed as YAML, JSON or template source again.
    Raises TemplateError on the first template that fails.
    """
    if isinstance(params, Template):
        return params.render(context)
    if isinstance(params, Mapping):
        return {key: render_params(value, context) for key, value in params.items()}
    if isinstance(params, tuple | list):
        return [render_params(item, context) for item in params]
    return params


@functools.lru_cache(maxsize=4096)
def _compile(source: str, dialect: Dialect = "text") -> jinja2.Template:
    # Cached because validation and compilation of a rule file compile the same sources,
    # and reloads recompile mostly unchanged ones; compiled templates are immutable.
    try:
        return _ENVIRONMENTS[dialect].from_string(source)
    except jinja2.TemplateSyntaxError as error:
        where = f" (template line {error.lineno})" if "\n" in source.strip() else ""
        raise TemplateError(source, f"syntax error: {error.message}{where}") from None
    except Exception as error:  # e.g. a guard refusing a constant expression
        raise TemplateError(source, f"cannot compile: {error}") from None


def _explain_undefined(error: jinja2.UndefinedError) -> str:
    message = error.message or "undefined value"
    return message + (_NAMES_HINT if message.endswith("is undefined") else _OPTIONAL_HINT)


def _join_bounded(source: str, parts: Iterable[str]) -> str:
    out: list[str] = []
    size = 0
    for part in parts:
        size += len(part)
        if size > MAX_OUTPUT_CHARS:
            raise TemplateError(source, f"output exceeds {MAX_OUTPUT_CHARS} characters")
        out.append(part)
    return "".join(out)
