"""A local stand-in for a SageMaker multi-model endpoint's InvokeEndpoint (hosting mode multimodel).

InvokeEndpoint with TargetModel (header ``X-Amzn-SageMaker-Target-Model``, botocore's
sagemaker-runtime model), as SageMaker documents it
(https://docs.aws.amazon.com/sagemaker/latest/dg/multi-model-endpoints.html,
https://docs.aws.amazon.com/sagemaker/latest/dg/mms-container-apis.html):

- TargetModel is the model's artifact relative to the endpoint's prefix. Here the prefix is a
  local directory: ``<models_dir>/<TargetModel>`` is a ``.tar.gz`` (unpacked once into a cache,
  as SageMaker downloads it to the instance) or an unpacked model directory. Missing: a
  ValidationError (400), as SageMaker's failed download is.
- A model not loaded in the container is loaded first (``POST /models`` with its local path).
  A 507 from the container (out of memory) unloads the least recently used model
  (``DELETE /models/{name}``) and retries, SageMaker's eviction.
- The request goes to ``POST /models/{name}/invoke`` with the TargetModel header; the answer
  and errors are the real-time stand-in's (ModelError 424 for a non-2xx container answer).
- No TargetModel: ValidationError (a multi-model endpoint needs one).

Not modelled: several instances, the model cache setting, metrics.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tarfile
import tempfile
import threading
from collections import OrderedDict
from http import HTTPStatus
from pathlib import Path

from local_stack.realtime_runtime import (
    _FORWARDED,
    RealtimeRuntime,
    _error,
    _model_error,
)

log = logging.getLogger("local_stack.multi_model")

TARGET_MODEL = "x-amzn-sagemaker-target-model"
MAX_TARGET_MODEL_CHARS = 1024  # botocore's TargetModelHeader
LOAD_TIMEOUT_SECONDS = 300.0


def container_model_name(target_model: str) -> str:
    """The name the container knows a target model by: readable, one path segment, unique per TargetModel."""
    stem = target_model.rsplit("/", 1)[-1].removesuffix(".tar.gz")
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem).lstrip("._-") or "model"
    return f"{safe[:64]}-{hashlib.sha256(target_model.encode()).hexdigest()[:8]}"


class MultiModelRuntime(RealtimeRuntime):
    """InvokeEndpoint for a multi-model endpoint whose prefix is `models_dir`."""

    def __init__(self, *, models_dir: Path, cache_dir: Path | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.models_dir = Path(models_dir)
        self._cache = Path(cache_dir) if cache_dir else Path(tempfile.mkdtemp(prefix="local-mme-"))
        # name -> TargetModel, least recently used first (SageMaker's view of what is loaded).
        self.loaded: OrderedDict[str, str] = OrderedDict()
        self.evictions: list[str] = []
        self._lock = threading.Lock()

    def invoke(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        target = headers.get(TARGET_MODEL)
        if not target:
            return _error(
                HTTPStatus.BAD_REQUEST,
                "ValidationError",
                f"Endpoint {self.endpoint_name} is a multi-model endpoint: TargetModel is required",
            )
        if len(target) > MAX_TARGET_MODEL_CHARS or not target.isprintable() or target[0].isspace():
            return _error(
                HTTPStatus.BAD_REQUEST,
                "ValidationError",
                f"TargetModel must be 1-{MAX_TARGET_MODEL_CHARS} printable characters",
            )
        name = container_model_name(target)
        with self._lock:  # one load decision at a time, as one instance's agent makes them
            problem = self._ensure_loaded(name, target)
        if problem is not None:
            return problem
        forwarded = {n: headers[n] for n in _FORWARDED if n in headers}
        forwarded["X-Amzn-SageMaker-Target-Model"] = target
        answer = self.forward(f"/models/{name}/invoke", body, forwarded)
        with self._lock:
            if name in self.loaded:
                self.loaded.move_to_end(name)
        return answer

    def _ensure_loaded(self, name: str, target: str) -> tuple[int, bytes, dict[str, str]] | None:
        if name in self.loaded:
            return None
        path = self._download(target)
        if path is None:
            return _error(
                HTTPStatus.BAD_REQUEST,
                "ValidationError",
                f"Failed to download model data (prefix {self.models_dir}, key {target}): "
                "no such model under the prefix",
            )
        while True:
            answer = self._http.post(
                f"{self.container_url}/models",
                json={"model_name": name, "url": str(path)},
                timeout=LOAD_TIMEOUT_SECONDS,
            )
            if answer.status_code == 507 and self.loaded:
                victim, _ = self.loaded.popitem(last=False)
                self.evictions.append(victim)
                log.info("evicting %s to load %s", victim, name)
                self._http.delete(f"{self.container_url}/models/{victim}")
                continue
            if answer.status_code in (200, 409):
                self.loaded[name] = target
                return None
            return _model_error(answer.status_code, answer.content.decode("utf-8", errors="replace")[:4096])

    def _download(self, target: str) -> Path | None:
        """The model's unpacked directory: `target` under the prefix, a tarball unpacked once."""
        # Lexically under the prefix (a '..' cannot leave it); a symlink in it may point anywhere,
        # like `make local`'s `default` link to the chosen model.
        source = Path(os.path.normpath(self.models_dir / target))
        if not source.is_relative_to(self.models_dir):
            return None
        if source.is_dir():
            return source
        if not source.is_file() or not target.endswith(".tar.gz"):
            return None
        destination = self._cache / container_model_name(target)
        if not destination.is_dir():
            staging = Path(tempfile.mkdtemp(dir=self._cache))
            with tarfile.open(source, "r:gz") as archive:
                archive.extractall(staging, filter="data")  # no absolute paths or links out of the directory
            staging.rename(destination)
        return destination
