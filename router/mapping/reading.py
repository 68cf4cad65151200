"""Read YAML and JSON mapping files and turn validation errors into problems."""

from __future__ import annotations

import copy
import json
import types
import typing
from collections.abc import Sequence
from importlib.resources.abc import Traversable
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from router.mapping.errors import NO_VALUE, MappingProblem

ModelT = TypeVar("ModelT", bound=BaseModel)

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_PATTERN_HINTS = {
    "^[A-Za-z_$]": "invalid path; use dot-separated keys such as fields.priority.name",
    "^[a-z][a-z0-9_]*$": (
        "invalid id; use lower-case letters, digits and underscores, starting with a "
        "letter"
    ),
}


class _UniqueKeyLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """A safe YAML loader that rejects a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first_line = seen.setdefault(key, line)
            except TypeError:
                continue  # an unhashable key; the base class raises the usual error
            if first_line != line:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first given at line {first_line}); "
                    "remove one of them",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def read_yaml(file: Traversable, display: str) -> tuple[Any, list[MappingProblem]]:
    """Parse one YAML file; return its data, or None and the problem that stopped it."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [_file_problem(display, f"cannot be read ({exc}); fix the file")]
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        return None, [_file_problem(display, _describe_yaml_error(exc))]
    except yaml.YAMLError as exc:
        return None, [_file_problem(display, f"invalid YAML ({exc}); fix the syntax")]

    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        return None, [
            _file_problem(display, f"the file is {kind}; expected a mapping of keys")
        ]
    return data, []


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = exc.problem or exc.context or "syntax error"
    if problem.startswith("duplicate key"):
        return f"{problem}{where}."
    return f"invalid YAML{where}: {problem}; fix the syntax."


def read_json(file: Traversable, display: str) -> tuple[Any, list[MappingProblem]]:
    """Parse one JSON file; return its data, or None and the problem that stopped it."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [_file_problem(display, f"cannot be read ({exc}); fix the file")]
    try:
        return json.loads(text), []
    except json.JSONDecodeError as exc:
        message = (
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}; "
            "fix the syntax."
        )
        return None, [_file_problem(display, message)]


def _file_problem(display: str, message: str) -> MappingProblem:
    return MappingProblem(file=display, key_path="", value=NO_VALUE, message=message)


def validate_model(
    model: type[ModelT], data: Any, *, display: str
) -> tuple[ModelT | None, list[MappingProblem]]:
    """Validate `data` as `model`; return the model (or None) and every problem.

    When the only errors are unknown keys, the model is validated again without them
    and returned, so that the checks across keys still run on the file and report
    their problems in the same run.
    """
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems = problems_from_validation(exc, display=display, model=model)
        errors = exc.errors(include_url=False)
    # NOTE: Any other schema error skips the checks across keys of this file, so
    # their problems show up only once the schema errors are fixed.
    if any(error["type"] != "extra_forbidden" for error in errors):
        return None, problems
    pruned = copy.deepcopy(data)
    for error in errors:
        _delete_at(pruned, error["loc"])
    try:
        return model.model_validate(pruned), problems
    except ValidationError:
        return None, problems


def _delete_at(data: Any, loc: tuple[str | int, ...]) -> None:
    container = data
    for part in loc[:-1]:
        container = container[part]
    del container[loc[-1]]


def format_key_path(loc: Sequence[str | int]) -> str:
    """Join a location into a key path such as `intents[3].patterns[0]`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def problems_from_validation(
    exc: ValidationError, *, display: str, model: type[BaseModel]
) -> list[MappingProblem]:
    """Turn each error of a pydantic validation into one problem."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        value = error.get("input", NO_VALUE)
        if loc and loc[-1] == "[key]":
            # pydantic marks a rejected dict key by appending "[key]".
            loc.pop()
            message = _describe_key_error(error)
        else:
            message = _describe_error(error, model, loc)
        if error["type"] == "missing":
            value = NO_VALUE
        problems.append(
            MappingProblem(
                file=display,
                key_path=format_key_path(loc),
                value=value,
                message=message,
            )
        )
    return problems


def _describe_key_error(error: ErrorDetails) -> str:
    expected = (error.get("ctx") or {}).get("expected")
    if expected:
        return f"unknown name; expected one of {expected}"
    return f"invalid key: {_lower_first(error['msg'])}"


def _describe_error(error: ErrorDetails, model: type[BaseModel], loc: list[Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return f"missing required key '{loc[-1]}'; add it"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        hint = f"; expected one of {', '.join(allowed)}" if allowed else ""
        return f"unknown key '{loc[-1]}'; remove it or fix its spelling{hint}"
    if kind == "literal_error":
        return f"invalid value; expected one of {ctx.get('expected')}"
    if kind == "string_type":
        return "expected a string; put quotes around the value in YAML"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        for prefix, hint in _PATTERN_HINTS.items():
            if pattern.startswith(prefix):
                return hint
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_short":
        return "must contain at least one entry"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "expected a mapping of keys"
    if kind == "list_type":
        return "expected a list"
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, ")
    return _lower_first(error["msg"])


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _allowed_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Return the keys the model allows at `loc`, or [] if that is not a model."""
    current: Any = model
    for part in loc:
        current = _unwrap_optional(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]
        else:
            return []
    current = _unwrap_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation
