"""README: "An invalid value fails `cdk synth` with the field, the value and what is allowed".

Every numeric field of the environment configuration that has bounds, pushed just outside
them, must be refused with a message that names the field, the value and the whole range
(pydantic alone names only the bound that was crossed).
"""

from __future__ import annotations

import copy
from typing import Any

import annotated_types
import pytest
from pydantic import BaseModel

from app_config import ENVIRONMENTS, ConfigError, EnvironmentConfig, parse_environment
from app_config.ranges import _model_in

# Each annotated_types bound, its operator and the attribute holding its value.
_BOUNDS = {
    annotated_types.Ge: (">=", "ge"),
    annotated_types.Gt: (">", "gt"),
    annotated_types.Le: ("<=", "le"),
    annotated_types.Lt: ("<", "lt"),
}


Bounded = tuple[tuple[str, ...], dict[str, Any]]


def bounded_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[Bounded]:
    """(path, {">=": 60, "<=": 21600, ...}) of every field with bounds, nested models included."""
    found = []
    for name, field in model.model_fields.items():
        nested = _model_in(field.annotation)
        if nested is not None:
            found += bounded_fields(nested, (*prefix, name))
            continue
        bounds = {_BOUNDS[type(c)][0]: getattr(c, _BOUNDS[type(c)][1]) for c in field.metadata if type(c) in _BOUNDS}
        if bounds:
            found.append(((*prefix, name), bounds))
    return found


def expected_range(bounds: dict[str, Any]) -> str:
    """The documented form: "60-21600" for a closed range, else the bounds joined ("> 0 and <= 100")."""
    if ">=" in bounds and "<=" in bounds:
        return f"{bounds['>=']}-{bounds['<=']}"
    return " and ".join(f"{op} {bounds[op]}" for op in (">=", ">", "<=", "<") if op in bounds)


def out_of_range(bounds: dict[str, Any]) -> list[Any]:
    step = 1 if all(isinstance(v, int) for v in bounds.values()) else 0.5
    values = {">=": lambda b: b - step, ">": lambda b: b, "<=": lambda b: b + step, "<": lambda b: b}
    return [values[op](bound) for op, bound in bounds.items()]


FIELDS = bounded_fields(EnvironmentConfig)


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(ENVIRONMENTS["dev"])
    target = raw
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value
    return raw


def test_the_config_has_bounded_fields() -> None:
    paths = {".".join(path) for path, _ in FIELDS}
    assert {"request_ttl_seconds", "invocation_timeout_seconds", "scaling.idle_minutes_before_scale_in"} <= paths


@pytest.mark.parametrize(("path", "bounds"), FIELDS, ids=[".".join(p) for p, _ in FIELDS])
def test_an_out_of_range_value_is_named_with_the_allowed_range(path: tuple[str, ...], bounds: dict[str, Any]) -> None:
    name = ".".join(path)
    for bad in out_of_range(bounds):
        with pytest.raises(ConfigError) as caught:
            parse_environment(_with(path, bad))
        line = next((x for x in str(caught.value).splitlines() if x.strip().startswith(f"{name} = ")), None)
        assert line is not None, str(caught.value)
        assert f"{name} = {bad!r}" in line and f"(allowed: {expected_range(bounds)})" in line, line


def test_the_ttl_message_reads_as_the_api_documents_it() -> None:
    """RequestTTLSeconds is 60-21600 in InvokeEndpointAsync's model (botocore sagemaker-runtime)."""
    import botocore.session

    shape = (
        botocore.session.get_session()
        .get_service_model("sagemaker-runtime")
        .operation_model("InvokeEndpointAsync")
        .input_shape.members["RequestTTLSeconds"]
    )
    with pytest.raises(
        ConfigError,
        match=rf"request_ttl_seconds = 30: .*\(allowed: {shape.metadata['min']}-"
        rf"{shape.metadata['max']}\)",
    ):
        parse_environment(_with(("request_ttl_seconds",), 30))
