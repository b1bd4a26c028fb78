"""What the configuration models share: the strict base model and the pattern checks.

Every model refuses a malformed string the same way, with pydantic's message naming the value
and what it should look like ("'pr*d' is not a GitHub environment name ..."), so a fix is
obvious from the synth error. Written once here so the models only say which pattern and why.
"""

from __future__ import annotations

import re

from pydantic import AfterValidator, BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are typos: reject them rather than ignore them. Frozen: a validated
    configuration cannot drift from what was checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def checked(pattern: re.Pattern[str], value: str, problem: str) -> str:
    """`value` when `pattern` matches all of it; else ValueError "'<value>' <problem>"."""
    # fullmatch, not match: a pattern's `$` also matches before a trailing newline.
    if not pattern.fullmatch(value):
        raise ValueError(f"{value!r} {problem}")
    return value


def matching(pattern: re.Pattern[str], problem: str) -> AfterValidator:
    """For `Annotated[str, matching(...)]`: the field's value must match `pattern`."""
    return AfterValidator(lambda value: checked(pattern, value, problem))


def check_not_above(model: BaseModel, lower: str, upper: str) -> None:
    """ValueError "<lower> (<value>) must not exceed <upper> (<value>)" when field `lower` of
    `model` is above field `upper`; an unset optional field is not compared. For a model
    validator: a pair of fields that only make sense in order (min/max, base/ceiling)."""
    low, high = getattr(model, lower), getattr(model, upper)
    if low is not None and high is not None and low > high:
        raise ValueError(f"{lower} ({low}) must not exceed {upper} ({high})")


def each_matching(pattern: re.Pattern[str], problem: str, *, repeated: str | None = None) -> AfterValidator:
    """For `Annotated[tuple[str, ...], each_matching(...)]`: every item must match `pattern`.

    Checked on the whole tuple (not per item) so an error names the field as written in the
    configuration. `repeated`, when given, refuses a value listed twice; `{values}` in it
    stands for the list."""

    def check(values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            checked(pattern, value, problem)
        if repeated is not None and len(set(values)) != len(values):
            raise ValueError(repeated.format(values=list(values)))
        return values

    return AfterValidator(check)
