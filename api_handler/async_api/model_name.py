"""Which of the endpoint's models a request is for, and how SageMaker is told.

A caller names a model in one of three ways (docs/api.md), all the same request:

    POST /models/{model}/invocations
    POST /invocations?model=NAME
    POST /invocations   with header X-Amzn-SageMaker-Target-Model: NAME

How the name reaches the model depends on the hosting mode:

- multimodel (a SageMaker multi-model endpoint): InvokeEndpoint's TargetModel, the model's
  tarball relative to the endpoint's S3 prefix (for example `customer-a.tar.gz`); botocore's
  sagemaker-runtime TargetModelHeader: 1-1024 printable characters
  (https://docs.aws.amazon.com/sagemaker/latest/dg/invoke-multi-model-endpoint.html). A name is required.
- async, realtime, serverless: InvokeEndpointAsync has no TargetModel, so the name travels as a
  `model=<name>` entry of X-Amzn-SageMaker-Custom-Attributes, which SageMaker forwards to the
  container verbatim; the container serves the `<name>/` folder of its model artifact
  (docs/container.md, "Several models behind one endpoint").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import BadRequest

TARGET_MODEL_HEADER = "x-amzn-sagemaker-target-model"
MODEL_QUERY_PARAMETER = "model"
# The custom attribute entry the container routes by (container/model_server/multi_model.py).
MODEL_ATTRIBUTE = "model"
# Segments of letters, digits, '.', '_' and '-' starting with a letter or digit (so no '..' and no
# absolute path), joined by '/': a folder name for the container, or an object path relative to a
# multi-model endpoint's prefix. A subset of TargetModelHeader's pattern (\A\S[\p{Print}]*\z).
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}(/[A-Za-z0-9][A-Za-z0-9._-]{0,127})*")
MAX_MODEL_NAME_CHARS = 1024  # TargetModelHeader's max
MAX_CUSTOM_ATTRIBUTES_CHARS = 1024  # CustomAttributesHeader's max
_ENTRY_SEPARATORS = re.compile(r"[;,]")


def check_model_name(name: str, where: str) -> str:
    if len(name) > MAX_MODEL_NAME_CHARS or not MODEL_NAME.fullmatch(name):
        raise BadRequest(
            f"{where} {name[:80]!r} is not a model name: letters, digits, '.', '_' and '-' starting with a letter "
            f"or digit, in '/'-separated segments of at most 128, {MAX_MODEL_NAME_CHARS} characters in all "
            "(for example 'customer-a' or 'customer-a.tar.gz')"
        )
    return name


def requested_model(event: Mapping[str, Any], headers: Mapping[str, str], path_model: str | None = None) -> str | None:
    """The model the request names (path, query or header), checked; None when it names none.

    Naming it twice is fine when both agree; two different names are a 400, never a guess.
    """
    named: list[tuple[str, str]] = []
    if path_model is not None:
        named.append(("the path's model", path_model))
    query = event.get("queryStringParameters") or {}
    if isinstance(query, Mapping) and query.get(MODEL_QUERY_PARAMETER) is not None:
        named.append(("query parameter model", query[MODEL_QUERY_PARAMETER]))
    if headers.get(TARGET_MODEL_HEADER) is not None:
        named.append(("header X-Amzn-SageMaker-Target-Model", headers[TARGET_MODEL_HEADER].strip(" \t")))
    for where, name in named:
        check_model_name(name, where)
    if len({name for _, name in named}) > 1:
        listed = ", ".join(f"{where} {name!r}" for where, name in named)
        raise BadRequest(f"the request names different models ({listed}); name one")
    return named[0][1] if named else None


def attribute_model(custom_attributes: str | None) -> str | None:
    """The `model=<name>` entry of custom attributes (entries separated by ';' or ','), or None."""
    if not custom_attributes:
        return None
    for entry in _ENTRY_SEPARATORS.split(custom_attributes):
        key, sep, value = entry.strip().partition("=")
        if sep and key.strip() == MODEL_ATTRIBUTE:
            return value.strip()
    return None


def forwarded_attributes(model: str | None, custom_attributes: str | None) -> str | None:
    """X-Amzn-SageMaker-Custom-Attributes as sent to SageMaker: the caller's, with `model=<name>` first."""
    if model is None:
        return custom_attributes
    existing = attribute_model(custom_attributes)
    if existing is not None and existing != model:
        raise BadRequest(
            f"X-Amzn-SageMaker-Custom-Attributes has model={existing!r} but the request names model {model!r}; name one"
        )
    if existing is not None:
        return custom_attributes
    combined = f"{MODEL_ATTRIBUTE}={model}" + (f"; {custom_attributes}" if custom_attributes else "")
    if len(combined) > MAX_CUSTOM_ATTRIBUTES_CHARS:
        raise BadRequest(
            f"the model name and X-Amzn-SageMaker-Custom-Attributes together are {len(combined)} characters; SageMaker "
            f"forwards at most {MAX_CUSTOM_ATTRIBUTES_CHARS} (the model travels as 'model={model[:40]}...' in them)"
        )
    return combined
