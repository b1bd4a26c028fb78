"""Strict JSON parsing of client bodies: UTF-8, RFC 8259 only, nesting depth bounded.

Python's parser recurses once per nesting level, so a body of 100,000 `[` raises
RecursionError (an uncaught 500) instead of a parse error. The depth is measured first,
with regular expressions (C speed, no recursion), and refused above MAX_JSON_DEPTH with a
400 that says so. NaN/Infinity, which Python accepts but JSON does not
(https://www.rfc-editor.org/rfc/rfc8259#section-6), are refused too: a model server in
another language would reject them after the request waited in the queue.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from .errors import BadRequest

# Deep enough for any model input (tensors as nested lists are a handful of levels),
# far below where the parser's recursion could hit Python's limit (~1000).
MAX_JSON_DEPTH = 64

# A JSON string literal, written as an unrolled loop (runs of plain characters, then one
# escape): about ten times faster on megabyte strings than an alternation per character.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = str.maketrans({"[": "1", "{": "1", "]": "2", "}": "2"})


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays/objects in `text`, ignoring brackets inside strings.

    Exact for valid JSON; for invalid JSON it is an estimate, and the parser reports
    the real error afterwards.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    return max(accumulate(1 if step == "1" else -1 for step in brackets.translate(_STEP)))


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (RFC 8259 has no NaN or Infinity)")


def parse_json(data: bytes, *, what: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The document in `data`, or BadRequest naming `what` and the parser's own message."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(f"{what} is not valid JSON: not UTF-8 at byte {error.start}") from None
    depth = nesting_depth(text)
    if depth > max_depth:
        raise BadRequest(f"{what} nests arrays/objects {depth} levels deep; at most {max_depth} are accepted")
    try:
        return json.loads(text, parse_constant=_no_constants)
    except RecursionError:  # pragma: no cover - the depth check above keeps the parser shallow
        raise BadRequest(f"{what} nests too deeply") from None
    except ValueError as error:  # JSONDecodeError, our constant refusal, int digit limit
        raise BadRequest(f"{what} is not valid JSON: {error}") from None
