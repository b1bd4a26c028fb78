"""The allowed range of a numeric field, for error messages.

pydantic reports only the bound that was crossed ("Input should be greater than or equal
to 60"); a user fixing a value wants the whole range ("allowed: 60-21600"). The bounds are
read from the fields' own constraints (``Field(ge=..., le=...)``), so the message can never
disagree with the check.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import annotated_types
from pydantic import BaseModel

_BOUND_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (``X``, ``X | None``, ``Optional[X]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for member in typing.get_args(annotation):
            found = _model_in(member)
            if found is not None:
                return found
    return None


def field_range(model: type[BaseModel], loc: Sequence[str | int]) -> str | None:
    """ "60-21600", ">= 1", "> 0 and <= 100"... for the field at ``loc`` of ``model``; None if it has no bounds."""
    current: type[BaseModel] | None = model
    field = None
    for part in loc:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return None
        field = current.model_fields[part]
        current = _model_in(field.annotation)
    if field is None:
        return None
    low: tuple[str, object] | None = None
    high: tuple[str, object] | None = None
    for constraint in field.metadata:
        if isinstance(constraint, annotated_types.Ge):
            low = (">=", constraint.ge)
        elif isinstance(constraint, annotated_types.Gt):
            low = (">", constraint.gt)
        elif isinstance(constraint, annotated_types.Le):
            high = ("<=", constraint.le)
        elif isinstance(constraint, annotated_types.Lt):
            high = ("<", constraint.lt)
    if low and high and low[0] == ">=" and high[0] == "<=":
        return f"{low[1]}-{high[1]}"  # the usual closed range, as AWS documents its limits
    parts = [f"{bound[0]} {bound[1]}" for bound in (low, high) if bound]
    return " and ".join(parts) or None


def range_note(model: type[BaseModel], error: Mapping[str, Any]) -> str:
    """ " (allowed: 60-21600)" for a bound error of pydantic's ``errors()``, else ""."""
    if error.get("type") not in _BOUND_ERRORS:
        return ""
    allowed = field_range(model, error.get("loc", ()))
    return f" (allowed: {allowed})" if allowed else ""
