"""The Jinja2 environment that renders rule templates, and the limits it enforces.

Threat model: templates come from rule files, which SREs write and review like code; label and
annotation values come from alerts and are untrusted data. Data is never compiled as a template
(see `templating.py`), and the sandbox refuses attribute access such as `__class__`.

The limits below stop runaway templates, which are usually accidents (`'-' * 10**9`, a huge
`center()` width): output above `MAX_OUTPUT_CHARS`, repetition, powers, padding and format widths
that would build larger strings, and the `lipsum`/`namespace` globals, which a title or a log
line never needs and which allow unbounded growth. They are cheap checks made before the
expensive operation, not a promise that a hostile rule author cannot waste CPU.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Sized
from typing import Any, Final

from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["MAX_OUTPUT_CHARS", "RuleTemplateEnvironment", "environment"]

MAX_OUTPUT_CHARS: Final = 64 * 1024
"""The largest string a template may render, and the largest value it may build on the way."""

_MAX_POWER_BITS: Final = 64 * 1024
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_WIDTH_METHODS: Final = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_WIDTH_FILTERS: Final = frozenset({"center", "indent", "wordwrap", "truncate", "slice", "batch"})


def _refuse(what: str) -> SecurityError:
    return SecurityError(f"{what} would exceed the template limit of {MAX_OUTPUT_CHARS} characters")


def _check_count(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OUTPUT_CHARS:
        raise _refuse(f"{what} {value}")


def _check_size(value: Any, what: str) -> None:
    if isinstance(value, str | list | tuple) and len(value) > MAX_OUTPUT_CHARS:
        raise _refuse(what)


def _check_printf(template: str) -> None:
    """Refuse `'%999999999s' % x`: the width, not the operands, decides the size."""
    for width, precision in _PRINTF_SPEC.findall(template):
        for number in (width, precision):
            if number == "*":
                raise SecurityError("'*' widths in % formatting are not supported in templates")
            if number:
                _check_count(int(number), "a % format width of")


def _check_format_spec(template: str) -> None:
    """Refuse `'{:999999999}'.format(x)` and nested widths such as `'{:{}}'`."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return  # format() itself reports the syntax error
    for _literal, _name, spec, _conversion in fields:
        if spec and "{" in spec:
            raise SecurityError("nested {} in a format spec are not supported in templates")
        for number in re.findall(r"\d+", spec or ""):
            _check_count(int(number), "a format width of")


def _repeat(left: Any, right: Any) -> None:
    for seq, count in ((left, right), (right, left)):
        sequence = isinstance(seq, str | list | tuple)
        if sequence and isinstance(count, int) and len(seq) * count > MAX_OUTPUT_CHARS:
            raise _refuse(f"repeating a sequence {count} times")


def _power(left: Any, right: Any) -> None:
    integers = isinstance(left, int) and isinstance(right, int)
    if integers and right > 0 and abs(left).bit_length() * right > _MAX_POWER_BITS:
        raise _refuse(f"{left} ** {right}")


def _concat(left: Any, right: Any) -> None:
    sized = isinstance(left, Sized) and isinstance(right, Sized)
    if sized and len(left) + len(right) > MAX_OUTPUT_CHARS:
        raise _refuse("adding these sequences")


def _modulo(left: Any, _right: Any) -> None:
    if isinstance(left, str):
        _check_printf(left)


_BINOP_GUARDS: Final[dict[str, Callable[[Any, Any], None]]] = {
    "*": _repeat,
    "**": _power,
    "+": _concat,
    "%": _modulo,
}


def _guard_width_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)  # keeps jinja's pass_environment/pass_context marker
    def guarded(*args: Any, **kwargs: Any) -> Any:
        for value in (*args[1:], *kwargs.values()):
            _check_count(value, f"the {name} filter with")
        return func(*args, **kwargs)

    return guarded


def _guard_format_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def guarded(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_printf(str(value))
        return func(value, *args, **kwargs)

    return guarded


def _guard_replace_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def guarded(eval_ctx: Any, value: Any, old: Any, new: Any, *args: Any, **kwargs: Any) -> Any:
        text, old_text, new_text = str(value), str(old), str(new)
        hits = text.count(old_text) if old_text else len(text) + 1
        if len(text) + hits * (len(new_text) - len(old_text)) > MAX_OUTPUT_CHARS:
            raise _refuse("this replace")
        return func(eval_ctx, value, old, new, *args, **kwargs)

    return guarded


class RuleTemplateEnvironment(ImmutableSandboxedEnvironment):
    """Immutable sandbox, strict undefined, no autoescape, and the size limits above."""

    # Intercepting also stops Jinja from constant-folding `'x' * 10**9` at compile time.
    intercepted_binops = frozenset(_BINOP_GUARDS)

    def __init__(self, finalize: Callable[[Any], Any] | None = None) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, finalize=finalize)
        for name in ("lipsum", "namespace"):
            self.globals.pop(name, None)
        for name in _WIDTH_FILTERS:
            self.filters[name] = _guard_width_filter(name, self.filters[name])
        self.filters["format"] = _guard_format_filter(self.filters["format"])
        self.filters["replace"] = _guard_replace_filter(self.filters["replace"])

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Check the size an operator would produce before computing it."""
        _BINOP_GUARDS[operator](left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Refuse padding methods with huge widths and huge values passed to macros."""
        values = (*args, *kwargs.values())
        if isinstance(getattr(obj, "__self__", None), str) and obj.__name__ in _WIDTH_METHODS:
            for value in values:
                _check_count(value, f"str.{obj.__name__} with")
        for value in values:
            _check_size(value, "passing this value")
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Check `'...'.format(...)` widths before the sandbox's own wrapping."""
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format_spec(value.__self__)
        return wrapped


environment: Final = RuleTemplateEnvironment()
"""The one shared environment; rendering is thread-safe and compiled templates are reused."""
