"""The one error type for a configuration that cannot be deployed, and how it is worded."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ValidationError

from app_config.ranges import range_note


class ConfigError(ValueError):
    """A configuration that cannot be deployed; the message names field, value and rule."""


def config_error(error: ValidationError, *, model: type[BaseModel], heading: str, whole: str) -> ConfigError:
    """pydantic's report on `model` as one ConfigError: `heading`, then a line per problem,
    `  field.path = value: what is wrong (allowed: range)`; `whole` names a problem of the whole
    model (a model validator's). A nested model's value is left out (its own fields are named
    on their lines)."""
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or whole
        value = item.get("input")
        shown = "" if isinstance(value, Mapping) else f" = {value!r}"
        message = item["msg"].removeprefix("Value error, ") + range_note(model, item)
        problems.append(f"  {field}{shown}: {message}")
    return ConfigError(heading + ":\n" + "\n".join(problems))
