"""Validate an API request against botocore's service model (the API's own contract).

botocore's client-side validator (botocore.validate.ParamValidator) checks required
members, unknown members, types and minimums, but deliberately not maximums, enums
or patterns: the service does. A CloudFormation template is checked before any
service sees it, so this walks the model itself and checks all of them.

Values CloudFormation resolves at deploy time (Ref, Fn::GetAtt, Fn::Join, ...) are
unknown here: an intrinsic counts as present and valid. `{"Ref": "AWS::NoValue"}`
counts as absent, which is what CloudFormation does with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StringShape, StructureShape

_NUMERIC = {"integer", "long", "float", "double"}


@dataclass(frozen=True)
class Violation:
    """One way a request breaks the service model: where, and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@cache
def service_model(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


def operation(service: str, name: str) -> OperationModel:
    return service_model(service).operation_model(name)


def enum_values(service: str, shape_name: str) -> tuple[str, ...]:
    """The allowed values of an enum shape, e.g. sagemaker ProductionVariantInstanceType."""
    shape = service_model(service).shape_for(shape_name)
    if not isinstance(shape, StringShape):
        raise TypeError(f"{service} {shape_name} is a {shape.type_name}, not an enum of strings")
    return tuple(shape.enum)


def is_intrinsic(value: Any) -> bool:
    """A CloudFormation function or reference: resolved at deploy time, unknown here."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _INTRINSICS


def is_no_value(value: Any) -> bool:
    return value == {"Ref": "AWS::NoValue"}


_INTRINSICS = {
    "Ref",
    "Fn::GetAtt",
    "Fn::Join",
    "Fn::Sub",
    "Fn::Select",
    "Fn::Split",
    "Fn::If",
    "Fn::ImportValue",
    "Fn::FindInMap",
    "Fn::Base64",
    "Fn::GetAZs",
    "Fn::Cidr",
    "Fn::ToJsonString",
    "Fn::Length",
}


def validate_request(service: str, operation_name: str, params: dict[str, Any]) -> list[Violation]:
    """Every violation of `operation_name`'s input shape by `params`."""
    shape = operation(service, operation_name).input_shape
    if shape is None:
        return [Violation(operation_name, "takes no input")] if params else []
    found: list[Violation] = []
    _check(shape, params, operation_name, found)
    return found


def _check(shape: Shape, value: Any, path: str, found: list[Violation]) -> None:
    if is_intrinsic(value):
        return
    kind = shape.type_name
    if kind == "structure":
        _structure(shape, value, path, found)  # type: ignore[arg-type]
    elif kind == "list":
        _list(shape, value, path, found)  # type: ignore[arg-type]
    elif kind == "map":
        _map(shape, value, path, found)  # type: ignore[arg-type]
    elif kind == "string":
        _string(shape, value, path, found)
    elif kind in _NUMERIC:
        _number(shape, value, path, found)
    elif kind == "boolean" and not (isinstance(value, bool) or value in ("true", "false")):
        found.append(Violation(path, f"{value!r} is not a boolean"))


def _structure(shape: StructureShape, value: Any, path: str, found: list[Violation]) -> None:
    if not isinstance(value, dict):
        found.append(Violation(path, f"expected an object ({shape.name}), got {type(value).__name__}"))
        return
    present = {key: item for key, item in value.items() if not is_no_value(item)}
    for name in shape.required_members:
        if name not in present:
            found.append(
                Violation(path, f"missing required member {name} ({shape.name} requires {shape.required_members})")
            )
    for name, item in present.items():
        if name not in shape.members:
            found.append(Violation(path, f"unknown member {name} (not in {shape.name}: {sorted(shape.members)})"))
            continue
        _check(shape.members[name], item, f"{path}.{name}", found)


def _list(shape: ListShape, value: Any, path: str, found: list[Violation]) -> None:
    if not isinstance(value, list):
        found.append(Violation(path, f"expected a list ({shape.name}), got {type(value).__name__}"))
        return
    _bounds(shape, len(value), path, "items", found)
    for index, item in enumerate(value):
        _check(shape.member, item, f"{path}[{index}]", found)


def _map(shape: MapShape, value: Any, path: str, found: list[Violation]) -> None:
    if not isinstance(value, dict):
        found.append(Violation(path, f"expected a map ({shape.name}), got {type(value).__name__}"))
        return
    _bounds(shape, len(value), path, "entries", found)
    for key, item in value.items():
        _check(shape.key, key, f"{path} key {key!r}", found)
        _check(shape.value, item, f"{path}[{key!r}]", found)


def _string(shape: Shape, value: Any, path: str, found: list[Violation]) -> None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        found.append(Violation(path, f"expected a string ({shape.name}), got {type(value).__name__}"))
        return
    # CloudFormation passes template numbers to string members as their text.
    text = value if isinstance(value, str) else str(value)
    enum = shape.enum if isinstance(shape, StringShape) else []
    if enum and text not in enum:
        found.append(Violation(path, f"{text!r} is not one of {shape.name}'s {len(enum)} values"))
    _bounds(shape, len(text), path, "characters", found)
    pattern = shape.metadata.get("pattern")
    if pattern is not None and not _matches(pattern, text):
        found.append(Violation(path, f"{text!r} does not match {shape.name}'s pattern {pattern}"))


def _number(shape: Shape, value: Any, path: str, found: list[Violation]) -> None:
    number: float
    if isinstance(value, bool):
        found.append(Violation(path, f"expected a number ({shape.name}), got a boolean"))
        return
    try:
        number = float(value)
    except (TypeError, ValueError):
        found.append(Violation(path, f"{value!r} is not a number ({shape.name})"))
        return
    if shape.type_name in ("integer", "long") and number != int(number):
        found.append(Violation(path, f"{value!r} is not a whole number ({shape.name})"))
    _bounds(shape, number, path, "", found)


def _bounds(shape: Shape, size: float, path: str, unit: str, found: list[Violation]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    what = f"{size:g} {unit}".strip()
    if low is not None and size < low:
        found.append(Violation(path, f"{what} is below {shape.name}'s minimum {low}"))
    if high is not None and size > high:
        found.append(Violation(path, f"{what} is above {shape.name}'s maximum {high}"))


@cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None  # a Java-only construct: nothing to check it with


def _matches(pattern: str, text: str) -> bool:
    # The models use Java regular expressions with String.matches semantics: the whole
    # value must match. Python's syntax agrees for the constructs these models use.
    compiled = _compiled(pattern)
    return compiled is None or compiled.fullmatch(text) is not None
