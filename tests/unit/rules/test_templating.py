"""Templates render alert data safely: data stays data, the sandbox holds, errors are clear."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediator.rules.sandbox import MAX_OUTPUT_CHARS
from remediator.rules.templating import (
    Template,
    TemplateError,
    compile_template,
    render_context,
)


def render(source: str, **labels: str) -> str:
    return compile_template(source).render(render_context(labels, {}, {}, {}))


def render_error(source: str, **labels: str) -> str:
    with pytest.raises(TemplateError) as caught:
        render(source, **labels)
    return str(caught.value)


def test_renders_labels_annotations_alert_and_incident() -> None:
    template = compile_template(
        "{{ labels.pod }}: {{ annotations.summary }} ({{ alert.status }}, #{{ incident.id }})"
    )
    context = render_context(
        {"pod": "checkout-1"}, {"summary": "crash"}, {"status": "firing"}, {"id": 7}
    )
    assert template.render(context) == "checkout-1: crash (firing, #7)"


def test_render_context_has_exactly_the_documented_names() -> None:
    context = render_context({"a": "1"}, {"b": "2"}, {"c": 3}, {"d": 4})
    assert context == {
        "labels": {"a": "1"},
        "annotations": {"b": "2"},
        "alert": {"c": 3},
        "incident": {"d": 4},
    }


def test_output_is_not_html_escaped() -> None:
    assert render("{{ labels.q }}", q="<a & 'b'>") == "<a & 'b'>"


def test_a_missing_label_is_an_error_that_suggests_a_default() -> None:
    message = render_error("{{ labels.team }}", pod="x")
    assert "has no attribute 'team'" in message
    assert "default(" in message


def test_default_makes_a_label_optional() -> None:
    assert render("{{ labels.team | default('nobody') }}") == "nobody"


def test_an_unknown_name_lists_the_names_a_template_can_use() -> None:
    message = render_error("{{ lables.pod }}")
    assert "'lables' is undefined" in message
    assert "labels, annotations, alert and incident" in message


@pytest.mark.parametrize("value", ["{{ 7*7 }}", "{% for x in y %}", "{# c #}", "{{", "%}"])
def test_label_values_are_data_and_never_compiled(value: str) -> None:
    assert render("{{ labels.v }}", v=value) == value
    assert render("[{{ labels.v | upper }}]", v=value) == f"[{value.upper()}]"


@given(st.text(max_size=50), st.text(max_size=50))
def test_any_label_or_annotation_value_renders_verbatim(label: str, annotation: str) -> None:
    template = compile_template("{{ labels.v }}|{{ annotations.v }}")
    assert template.render(render_context({"v": label}, {"v": annotation}, {}, {})) == (
        f"{label}|{annotation}"
    )


@pytest.mark.parametrize(
    "source",
    [
        "{{ labels.__class__ }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ labels.items.__self__ }}",
        "{{ render.__globals__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ labels.update({'a': 'b'}) }}",
        "{{ [].append(1) }}",
    ],
)
def test_the_sandbox_refuses_escapes_and_mutation(source: str) -> None:
    message = render_error(source)
    assert "template" in message


def test_a_sandbox_refusal_says_so() -> None:
    assert "refused by the sandbox" in render_error("{{ ''.__class__.__mro__ }}")


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 10**9 }}",
        "{{ 10**9 * 'x' }}",
        "{{ [0] * 10**8 }}",
        "{{ 2 ** 10000000 }}",
        "{{ 'x'.center(10**9) }}",
        "{{ 'x'.ljust(10**9) }}",
        "{{ 'x' | center(10**9) }}",
        "{{ 'x' | indent(10**9) }}",
        "{{ '{:999999999}'.format(1) }}",
        "{{ '{:{}}'.format(1, 10**9) }}",
        "{{ '%999999999s' % 'x' }}",
        "{{ '%*s' % (10**9, 'x') }}",
        "{{ '%999999999s' | format('x') }}",
        "{{ ('x' * 60000) | replace('x', 'xx') }}",
        "{{ ('x' * 60000) + ('x' * 60000) }}",
        "{% macro grow(s) %}{{ grow(s ~ s) }}{% endmacro %}{{ grow('x') }}",
        "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
        "{{ lipsum(100000) }}",
    ],
)
def test_blowups_are_refused_quickly(source: str) -> None:
    assert "template" in render_error(source)


def test_output_is_capped() -> None:
    assert f"exceeds {MAX_OUTPUT_CHARS} characters" in render_error(
        "{% for i in range(1000) %}{{ 'x' * 100 }}{% endfor %}"
    )
    assert len(render("{{ 'x' * 65536 }}")) == MAX_OUTPUT_CHARS


def test_ordinary_arithmetic_and_formatting_still_work() -> None:
    assert render("{{ 2 ** 10 }} {{ '-' * 3 }} {{ '%05.1f' % 3.14159 }}") == "1024 --- 003.1"
    assert render("{{ '{:>6}'.format(labels.p) }}|{{ '%d' | format(1700000000) }}", p="ab") == (
        "    ab|1700000000"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ 'a' + 1 }}", "TypeError"),
        ("{{ 10 ** 5000 }}", "ValueError"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "RecursionError"),
    ],
)
def test_runtime_failures_become_template_errors(source: str, expected: str) -> None:
    assert expected in render_error(source)


@pytest.mark.parametrize(
    "source",
    ["{{ labels.x ", "{% for %}", "{% if x %}", "{{ } }}", "{{ labels.x | nosuchfilter }}"],
)
def test_syntax_errors_are_reported_at_compile_time(source: str) -> None:
    with pytest.raises(TemplateError, match="syntax error"):
        compile_template(source)


def test_multi_line_templates_name_the_line() -> None:
    with pytest.raises(TemplateError, match="template line 2"):
        compile_template("ok\n{% if %}\nmore")


def test_long_sources_are_shortened_in_messages() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template("x" * 200 + "{{")
    assert "x" * 200 not in str(caught.value)
    assert caught.value.source == "x" * 200 + "{{"


@given(st.text(alphabet=st.sampled_from("{}%#|'\"().*ab 1-~+"), max_size=30))
def test_compiling_and_rendering_never_raise_anything_but_template_error(source: str) -> None:
    context: dict[str, Any] = render_context({"a": "1"}, {}, {}, {})
    with contextlib.suppress(TemplateError):
        compile_template(source).render(context)


def test_templates_compare_and_hash_by_source() -> None:
    assert compile_template("{{ labels.a }}") == Template("{{ labels.a }}")
    assert hash(compile_template("a")) == hash(Template("a"))
    assert "source='a'" in repr(Template("a"))


def test_render_params_renders_templates_as_data_and_keeps_the_rest() -> None:
    from types import MappingProxyType

    from remediator.rules.templating import render_params

    params = MappingProxyType(
        {
            "type": "ansible",
            "retries": 2,
            "extravars": MappingProxyType({"path": compile_template("{{ labels.mount }}")}),
            "tags": ("clean", compile_template("{{ labels.job }}")),
        }
    )
    context = render_context({"mount": "{{ 7*7 }}", "job": "node"}, {}, {}, {})
    assert render_params(params, context) == {
        "type": "ansible",
        "retries": 2,
        "extravars": {"path": "{{ 7*7 }}"},
        "tags": ["clean", "node"],
    }
