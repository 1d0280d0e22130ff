"""Turn YAML and pydantic errors into `Problem`s an SRE can act on: `file:line: message`.

Pydantic reports a location such as `("rules", 3, "match", 1)`; `YamlDocument.line_of` maps it
to the line of that YAML node. Messages name the field path (`rules[3].match[1]`) and, where
pydantic's wording is generic ("Extra inputs are not permitted"), say what to write instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from remediator.errors import Problem
from remediator.rules.model import ActionField, RuleFile, action_model_for
from remediator.yaml_lines import YamlDocument

__all__ = ["format_loc", "validation_problems", "yaml_problem"]


def yaml_problem(file: str, error: yaml.YAMLError) -> Problem:
    """A YAML syntax error at the parser's line."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        what = error.problem or "syntax error"
        if error.context:
            what += f" ({error.context})"
        return Problem(file, error.problem_mark.line + 1, f"invalid YAML: {what}")
    return Problem(file, 1, f"invalid YAML: {error}")


def validation_problems(
    file: str, doc: YamlDocument, error: ValidationError, root: type[BaseModel] = RuleFile
) -> list[Problem]:
    """One Problem per pydantic error, at the line of the offending node.

    `root` is the model the whole document was validated as (rule files by default; the
    service config uses this too), so unknown keys can be answered with the known ones.
    """
    return [
        Problem(file, doc.line_of(detail["loc"]), _message(detail, doc.data, root))
        for detail in error.errors()
    ]


def format_loc(loc: Sequence[str | int]) -> str:
    """`("rules", 3, "match", 1)` -> `rules[3].match[1]`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def _message(detail: ErrorDetails, data: Any, root: type[BaseModel]) -> str:
    loc = detail["loc"]
    if detail["type"] == "extra_forbidden":
        return _at(loc[:-1], _unknown_key(str(loc[-1]), _known_keys(loc[:-1], data, root)))
    if detail["type"] == "missing":
        return _at(loc[:-1], f'missing required key "{loc[-1]}"')
    if detail["type"] == "too_short":
        return _at(loc, "must not be empty")
    message = detail["msg"].removeprefix("Value error, ")
    if message.startswith("Input should be "):
        expected = message.removeprefix("Input should be ")
        message = f"must be {expected}, not {_describe(detail['input'])}"
    return _at(loc, message)


def _at(loc: Sequence[str | int], message: str) -> str:
    path = format_loc(loc)
    return f"{path}: {message}" if path else message


def _unknown_key(key: str, known: list[str]) -> str:
    message = f'unknown key "{key}"'
    guess = difflib.get_close_matches(key, known, n=1)
    if guess:
        message += f' (did you mean "{guess[0]}"?)'
    if known:
        message += f"; known keys: {', '.join(known)}"
    return message


def _describe(value: Any) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _known_keys(loc: Sequence[str | int], data: Any, root: type[BaseModel]) -> list[str]:
    """The keys the model at `loc` accepts, found by walking the types alongside the data."""
    annotation: Any = root
    value = data
    for part in loc:
        model = _model(annotation, value)
        if model is None:
            annotation = _item_type(annotation)
        else:
            fields = {info.alias or name: info for name, info in model.model_fields.items()}
            if part not in fields:
                return []
            annotation = fields[str(part)].annotation
        value = _step(value, part)
    model = _model(annotation, value)
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _model(annotation: Any, value: Any) -> type[BaseModel] | None:
    annotation = _strip_optional(annotation)
    if get_origin(annotation) is Annotated:
        if any(isinstance(item, ActionField) for item in get_args(annotation)[1:]):
            return action_model_for(value)
        annotation = get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _item_type(annotation: Any) -> Any:
    annotation = _strip_optional(annotation)
    if get_origin(annotation) is Annotated:
        annotation = _strip_optional(get_args(annotation)[0])
    args = get_args(annotation)
    return args[0] if args else Any


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, UnionType):
        options = [arg for arg in get_args(annotation) if arg is not NoneType]
        if len(options) == 1:
            return options[0]
    return annotation


def _step(value: Any, part: str | int) -> Any:
    if isinstance(value, dict):
        return value.get(part)
    if isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
        return value[part]
    return None
