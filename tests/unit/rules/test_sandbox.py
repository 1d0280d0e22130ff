"""The template environment: sandboxed, strict, and limited before work is done."""

from __future__ import annotations

import pytest
from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from remediator.rules.sandbox import MAX_OUTPUT_CHARS, environment


def test_the_environment_is_an_immutable_strict_sandbox_without_autoescape() -> None:
    assert isinstance(environment, ImmutableSandboxedEnvironment)
    assert environment.undefined is StrictUndefined
    assert environment.autoescape is False


def test_globals_that_allow_unbounded_growth_are_removed() -> None:
    assert "lipsum" not in environment.globals
    assert "namespace" not in environment.globals
    assert "range" in environment.globals


def test_huge_constants_are_not_folded_at_compile_time() -> None:
    # Jinja folds constant expressions while compiling; an intercepted operator must not be,
    # or loading a rule file would build the huge string.
    template = environment.from_string("{{ 'x' * 10**9 }}")
    with pytest.raises(SecurityError):
        template.render()


def test_filters_keep_their_context_passing() -> None:
    assert environment.from_string("{{ 'a-b' | replace('-', '+') }}").render() == "a+b"
    assert environment.from_string("{{ 'ab' | center(6) }}").render() == "  ab  "


def test_limits_allow_exactly_the_maximum() -> None:
    rendered = environment.from_string("{{ 'x' * n }}").render(n=MAX_OUTPUT_CHARS)
    assert len(rendered) == MAX_OUTPUT_CHARS
    with pytest.raises(SecurityError):
        environment.from_string("{{ 'x' * n }}").render(n=MAX_OUTPUT_CHARS + 1)
