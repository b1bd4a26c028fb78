"""Validated AWS identifiers shared by every configuration model."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


def _account(value: str) -> str:
    if not _ACCOUNT.match(value):
        raise ValueError(f"{value!r} is not a 12-digit AWS account id")
    return value


def _region(value: str) -> str:
    if not _REGION.match(value):
        raise ValueError(f"{value!r} is not an AWS region name like 'eu-west-1'")
    return value


AccountId = Annotated[str, AfterValidator(_account)]
RegionName = Annotated[str, AfterValidator(_region)]
