"""User scripts written for the Hugging Face inference toolkit, run with its semantics.

Users of the SageMaker Hugging Face inference toolkit ship ``code/inference.py``
(or the file ``SAGEMAKER_PROGRAM`` names, which ``HuggingFaceModel(entry_point=...)``
sets) with ``model_fn(model_dir)``, ``input_fn(input_data, content_type)``,
``predict_fn(data, model)``, ``output_fn(prediction, accept)`` or a single
``transform_fn(model, input_data, content_type, accept)``, each optionally with
a trailing ``context`` argument. What the toolkit does, this module does
(github.com/aws/sagemaker-huggingface-inference-toolkit, handler_service.py):

- JSON and CSV bodies reach the hooks as ``str``, every other type as ``bytes``;
- ``Accept`` absent or ``*/*`` reaches them as ``application/json``;
- a hook gets ``context`` when it declares one parameter more than the
  toolkit's own signature, and a hook with any other number of parameters
  fails the load with the toolkit's message;
- ``transform_fn`` together with ``input_fn`` / ``predict_fn`` / ``output_fn``
  fails the load with the toolkit's message;
- the hooks a script leaves out are the toolkit's defaults (its codecs,
  ``model(inputs, **parameters)``).

Unlike the toolkit, failures are not all 400 (see errors.py and
docs/container.md): a failing ``input_fn`` is the client's 400, a failing
``predict_fn`` / ``output_fn`` a 500 (507 when out of memory).

User code sees one request at a time, as in the toolkit: its ``predict_fn``
was written for one payload, so it is not batched with others.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import codec
from .errors import BadRequest, ServerError, from_model_exception, is_out_of_memory, with_status
from .hook_context import HookContext

log = logging.getLogger(__name__)

DEFAULT_PROGRAM = "inference"
# Where the stand-in for the toolkit's importable helpers lives (see its __init__).
TOOLKIT_COMPAT_DIR = Path(__file__).parent / "toolkit_compat"

# Each hook's parameters in the toolkit, without the optional trailing context.
_ARITY = {"model_fn": 1, "input_fn": 2, "predict_fn": 2, "output_fn": 2, "transform_fn": 4}


def module_name(program: str | None) -> str:
    """``SAGEMAKER_PROGRAM`` -> module name: ``"serve.py"`` -> ``"serve"`` (the SageMaker toolkits' rule)."""
    program = (program or "").strip() or DEFAULT_PROGRAM
    return program[:-3] if program.endswith(".py") else program


def find_user_module(program: str | None, *code_dirs: Path) -> Path | None:
    """The user script in the first code directory that has it.

    The default ``inference.py`` is optional. A script named by
    ``SAGEMAKER_PROGRAM`` is not: serving the default pipeline instead of the
    user's entry point would answer the wrong thing with a healthy /ping.
    """
    name = module_name(program)
    for code_dir in code_dirs:
        candidate = code_dir / f"{name}.py"
        if candidate.is_file():
            return candidate
    if name != DEFAULT_PROGRAM:
        searched = ", ".join(str(d) for d in code_dirs)
        raise FileNotFoundError(f"SAGEMAKER_PROGRAM={program!r}: no {name}.py in {searched}")
    return None


def import_user_module(path: Path) -> Any:
    # The toolkit puts code/ first on sys.path, so the script may import its siblings.
    sys.path.insert(0, str(path.parent))
    # Last: a real toolkit installation, if any, wins over the stand-in.
    if str(TOOLKIT_COMPAT_DIR) not in sys.path:
        sys.path.append(str(TOOLKIT_COMPAT_DIR))
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def takes_context(name: str, fn: Callable[..., Any]) -> bool:
    """Whether the toolkit would pass ``context`` to this hook; TypeError as the toolkit raises it."""
    try:
        count = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # no readable signature (a builtin): call it plainly
        return False
    expected = _ARITY[name]
    if count == expected + 1:
        return True
    if count == expected:
        return False
    raise TypeError(f"{name} definition takes {expected} or {expected + 1} arguments but {count} were given.")


# --- the toolkit's defaults, for the hooks a user does not define ---------------
def default_input_fn(input_data: bytes | str, content_type: str) -> Any:
    return codec.decode_document(input_data, codec.request_kind(content_type))


def default_predict_fn(data: Any, model: Any) -> Any:
    if isinstance(data, dict):
        inputs = data.pop("inputs", data)
        parameters = data.pop("parameters", None) or {}
    else:
        inputs, parameters = data, {}
    return model(inputs, **parameters)


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    return codec.encode_response(prediction, accept)


@dataclass
class HookResponse:
    body: bytes
    content_type: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class UserCode:
    """The hooks of one user module, with the toolkit's defaults filled in."""

    def __init__(self, module: Any) -> None:
        self.module = module
        found = {name: getattr(module, name, None) for name in _ARITY}
        found = {name: fn if callable(fn) else None for name, fn in found.items()}
        self.defined = sorted(name for name, fn in found.items() if fn is not None)
        if found["transform_fn"] and any(found[n] for n in ("input_fn", "predict_fn", "output_fn")):
            # The toolkit's own words: transform_fn replaces the other three.
            raise ValueError(
                "Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, "
                "and/or output_fn implementation"
            )
        defaults = {"input_fn": default_input_fn, "predict_fn": default_predict_fn, "output_fn": default_output_fn}
        self.hooks: dict[str, Callable[..., Any] | None] = {}
        self.with_context: dict[str, bool] = {}
        for name, fn in found.items():
            self.hooks[name] = fn or defaults.get(name)
            self.with_context[name] = fn is not None and takes_context(name, fn)
        self.transform_fn = found["transform_fn"]
        self.model_dir = ""
        self.gpu_id = -1

    def _call(self, name: str, context: HookContext, *args: Any) -> Any:
        fn = self.hooks[name]
        if fn is None:
            raise RuntimeError(f"the user script defines no {name}")
        return fn(*args, context) if self.with_context[name] else fn(*args)

    def context(self, headers: dict[str, str] | None = None) -> HookContext:
        return HookContext(model_dir=self.model_dir, gpu_id=self.gpu_id, headers=headers)

    def load(self, model_dir: Path, default_loader: Callable[[], Any], *, gpu_id: int = -1) -> Any:
        self.model_dir, self.gpu_id = str(model_dir), gpu_id
        if self.hooks["model_fn"] is None:
            return default_loader()
        return self._call("model_fn", self.context(), str(model_dir))

    def handle(
        self, model: Any, body: bytes, content_type: str, accept: str | None, headers: dict[str, str] | None = None
    ) -> HookResponse:
        """Run one request through the hooks (on the inference thread)."""
        context = self.context(headers)
        accept = (accept or "").strip()
        if not accept or accept == codec.ANY:
            accept = codec.JSON
        data: bytes | str = body
        if codec.media_type(content_type) in codec.UTF8_TYPES:
            data = codec.decode_text(body, codec.media_type(content_type))
        if self.transform_fn is not None:
            try:
                result = self._call("transform_fn", context, model, data, content_type, accept)
            except Exception as exc:
                raise _classify(exc) from exc
            return _as_response(result, accept, context)
        try:
            decoded = self._call("input_fn", context, data, content_type)
        except Exception as exc:
            if isinstance(exc, ServerError) or _chosen_status(exc) or is_out_of_memory(exc):
                raise _classify(exc) from exc
            # Anything else input_fn raises is about the payload it could not decode.
            raise BadRequest(f"input_fn failed: {type(exc).__name__}: {exc}") from exc
        try:
            prediction = self._call("predict_fn", context, decoded, model)
            result = self._call("output_fn", context, prediction, accept)
        except Exception as exc:
            raise _classify(exc) from exc
        return _as_response(result, accept, context)


def _chosen_status(exc: BaseException) -> int | None:
    """Toolkit scripts raise Multi Model Server's ``PredictionException(message, error_code)``
    to pick the status themselves: any 4xx / 5xx ``error_code`` is honoured."""
    code = getattr(exc, "error_code", None)
    return code if isinstance(code, int) and 400 <= code <= 599 and not isinstance(exc, ServerError) else None


def _classify(exc: BaseException) -> ServerError:
    code = _chosen_status(exc)
    if code is not None:
        return with_status(code, str(getattr(exc, "message", exc)))
    return from_model_exception(exc)


def _as_response(result: Any, accept: str, context: HookContext) -> HookResponse:
    content_type = None
    # The generic SageMaker toolkit lets output_fn return (body, content_type).
    if isinstance(result, tuple) and len(result) == 2:
        result, content_type = result
    if isinstance(result, str):
        result = result.encode("utf-8")
    elif not isinstance(result, (bytes, bytearray)):
        result = codec.encode_json(result)
    # Like the toolkit, the response's type is the Accept it answered, unless the
    # hook set one; a list or a wildcard is no content type, so JSON then.
    content_type = context.response_content_type or content_type
    if content_type is None:
        concrete = "*" not in accept and "," not in accept
        content_type = accept if concrete else codec.JSON
    return HookResponse(bytes(result), content_type, context.response_status or 200, context.response_headers)
