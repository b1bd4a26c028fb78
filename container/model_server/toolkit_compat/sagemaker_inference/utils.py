"""``sagemaker_inference.utils``: the helpers scripts call."""

from __future__ import annotations

import re
from typing import Any

CONTENT_TYPE_REGEX = re.compile("^[Cc]ontent-?[Tt]ype")


def read_file(path: str, mode: str = "r") -> Any:
    with open(path, mode) as f:
        return f.read()


def write_file(path: str, data: Any, mode: str = "w") -> None:
    with open(path, mode) as f:
        f.write(data)


def retrieve_content_type_header(request_property: dict[str, str]) -> str | None:
    """The Content-Type among request properties, however it is spelled."""
    for key in request_property:
        if CONTENT_TYPE_REGEX.match(key):
            return request_property[key]
    return None


def parse_accept(accept: str) -> list[str]:
    return accept.replace(" ", "").split(",")


def remove_crlf(illegal_string: str) -> str:
    return illegal_string.replace("\r", "").replace("\n", "")
