"""``code/inference.py`` in the model directory, with the Hugging Face toolkit's hooks.

Users of the SageMaker Hugging Face inference toolkit ship ``model_fn(model_dir)``,
``input_fn(input_data, content_type)``, ``predict_fn(data, model)``,
``output_fn(prediction, accept)`` or a single
``transform_fn(model, input_data, content_type, accept)``. The same files work
here unchanged: same names, same arguments, same defaults for the hooks a user
leaves out, and the same optional trailing ``context`` argument (passed as None:
there is no Multi Model Server context object here).

User code sees one request at a time, as in the toolkit: its ``predict_fn``
was written for one payload, so it is not batched with others.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import codec
from .errors import BadRequest, ServerError, from_model_exception

log = logging.getLogger(__name__)

MODULE_NAME = "inference"
_HOOKS = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn")


def find_user_module(*code_dirs: Path) -> Path | None:
    for code_dir in code_dirs:
        candidate = code_dir / f"{MODULE_NAME}.py"
        if candidate.is_file():
            return candidate
    return None


def import_user_module(path: Path) -> Any:
    # The toolkit puts code/ on sys.path, so inference.py may import its siblings.
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a hook, adding the toolkit's trailing ``context`` argument if it takes one."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return fn(*args)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) > len(args) and positional[len(args)].default is inspect.Parameter.empty:
        return fn(*args, None)
    return fn(*args)


# --- the toolkit's defaults, for the hooks a user does not define ---------------
def default_input_fn(input_data: bytes, content_type: str) -> Any:
    kind = codec.check_content_type(content_type)
    if kind == codec.TEXT:
        return {"inputs": codec.decode(input_data, kind).inputs[0]}
    try:
        return json.loads(input_data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None


def default_predict_fn(data: Any, model: Any) -> Any:
    if isinstance(data, dict):
        inputs = data.pop("inputs", data)
        parameters = data.pop("parameters", None) or {}
    else:
        inputs, parameters = data, {}
    return model(inputs, **parameters)


def default_output_fn(prediction: Any, accept: str) -> bytes:
    codec.check_accept(accept)
    return json.dumps(prediction, ensure_ascii=False, default=codec._jsonable).encode("utf-8")


class UserCode:
    """The hooks of one user module, with the toolkit's defaults filled in."""

    def __init__(self, module: Any) -> None:
        self.module = module
        found = {name: getattr(module, name, None) for name in _HOOKS}
        self.defined = sorted(name for name, fn in found.items() if callable(fn))
        if found["transform_fn"] and any(found[n] for n in ("input_fn", "predict_fn", "output_fn")):
            # Same rule, same reason as the toolkit: transform_fn replaces the other three.
            raise ValueError("transform_fn cannot be combined with input_fn, predict_fn or output_fn")
        self.model_fn = found["model_fn"]
        self.input_fn = found["input_fn"] or default_input_fn
        self.predict_fn = found["predict_fn"] or default_predict_fn
        self.output_fn = found["output_fn"] or default_output_fn
        self.transform_fn = found["transform_fn"]

    def load(self, model_dir: Path, default_loader: Callable[[], Any]) -> Any:
        if self.model_fn is None:
            return default_loader()
        return _call(self.model_fn, str(model_dir))

    def handle(self, model: Any, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """Run one request through the hooks; return the response body and its type.

        Failures are classified by the hook that raised: input_fn -> 400 (the
        payload could not be decoded), predict_fn / output_fn -> 500 or 507.
        """
        if self.transform_fn is not None:
            try:
                result = _call(self.transform_fn, model, body, content_type, accept)
            except Exception as exc:
                raise from_model_exception(exc) from exc
            return _as_response(result, accept)
        try:
            data = _call(self.input_fn, body, content_type)
        except ServerError:
            raise
        except Exception as exc:
            raise BadRequest(f"input_fn failed: {type(exc).__name__}: {exc}") from exc
        try:
            prediction = _call(self.predict_fn, data, model)
            result = _call(self.output_fn, prediction, accept)
        except Exception as exc:
            raise from_model_exception(exc) from exc
        return _as_response(result, accept)


def _as_response(result: Any, accept: str) -> tuple[bytes, str]:
    content_type = None
    # The generic SageMaker toolkit lets output_fn return (body, content_type).
    if isinstance(result, tuple) and len(result) == 2:
        result, content_type = result
    if isinstance(result, str):
        result = result.encode("utf-8")
    elif not isinstance(result, (bytes, bytearray)):
        result = json.dumps(result, ensure_ascii=False, default=codec._jsonable).encode("utf-8")
    if content_type is None:
        concrete = accept and "*" not in accept and "," not in accept
        content_type = accept.strip() if concrete else codec.JSON
    return bytes(result), content_type
