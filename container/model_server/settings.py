"""Every knob the server reads, parsed once from the environment.

SageMaker and the Hugging Face inference toolkit already define some variable
names (``SAGEMAKER_BIND_TO_PORT``, ``HF_MODEL_ID``, ``HF_TASK`` ...): those are
kept verbatim so that a model configured for the toolkit runs unchanged. The
server's own knobs share the ``MODEL_SERVER_`` prefix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from . import contract


class Settings(BaseSettings):
    # The variable names are the contract's (contract.py): own knobs are ENV_PREFIX + field name.
    model_config = SettingsConfigDict(env_prefix=contract.ENV_PREFIX, populate_by_name=True, extra="ignore")

    # --- SageMaker contract -------------------------------------------------
    port: int = Field(contract.DEFAULT_PORT, ge=1, le=65535, validation_alias=contract.BIND_TO_PORT)
    # 0.0.0.0 inside a container (SageMaker connects from outside it); tests and
    # `make serve` bind to 127.0.0.1.
    host: str = contract.DEFAULT_HOST

    # --- where the model comes from (Hugging Face toolkit names) -------------
    model_dir: Path = Field(Path(contract.DEFAULT_MODEL_DIR), validation_alias=contract.MODEL_DIR)
    hf_model_id: str | None = Field(None, validation_alias=contract.HF_MODEL_ID)
    hf_model_revision: str | None = Field(None, validation_alias=contract.HF_MODEL_REVISION)
    # SecretStr: the token never shows up in logged settings or tracebacks.
    hf_api_token: SecretStr | None = Field(None, validation_alias=contract.HF_API_TOKEN)
    hf_task: str | None = Field(None, validation_alias=contract.HF_TASK)
    # The user script in code/ (HuggingFaceModel(entry_point=...) sets it); default inference.py.
    sagemaker_program: str | None = Field(None, validation_alias=contract.PROGRAM)
    # "toolkit": a single input is answered as the Hugging Face toolkit answers it
    # (what pipeline(input) returns, e.g. [{"label": ...}]). "compact": as this
    # server did before, the one input's own output (e.g. {"label": ...}).
    response_shape: Literal["toolkit", "compact"] = "toolkit"

    # --- hardware --------------------------------------------------------------
    # The stack sets "cuda" on GPU instance types and "cpu" on CPU ones: with
    # "cuda" and no usable GPU the load fails and /ping stays 503 (loader.py,
    # require_cuda), never a silent CPU fallback. "auto" (GPU if torch sees
    # one, else CPU) is for `make serve` and the local pipeline.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # float16 weights on a GPU: half the memory, about twice the throughput on
    # tensor cores. Ignored on CPU, where float16 kernels are slow or missing.
    half_precision: bool = False
    # torch's intra-op threads on CPU. Unset: torch's default (one per physical
    # core) in the engine process, where nothing else runs (engine_main.py); at
    # most CPUs - 1 when the engine shares the front end's process
    # (engine_thread.py: loader.cpu_threads has the measurement).
    torch_threads: int | None = Field(None, ge=1)

    # --- dynamic batching --------------------------------------------------------
    # Inputs (not requests) per model call. 32 keeps a CPU batch's padding waste
    # and latency moderate; raise it on a GPU.
    max_batch_size: int = Field(contract.DEFAULT_MAX_BATCH_SIZE, ge=1)
    # Upper bound on how long the first request of a batch waits for company.
    # The batcher only waits when recent traffic showed concurrency, so a lone
    # request never pays it (see batching.py).
    max_batch_wait_ms: float = Field(10.0, ge=0)

    # --- requests -------------------------------------------------------------------
    # Bodies above this get 413 before they are read in full. Default: the
    # largest payload an asynchronous endpoint accepts, 1 GB
    # (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference.html);
    # the stack sets it from the API's own maximum. Large bodies are spooled to
    # a temporary file while they arrive and long texts are cut while
    # tokenizing (bodies.py, truncation.py), so the limit is not a memory bound.
    max_request_bytes: int = Field(contract.DEFAULT_MAX_REQUEST_BYTES, ge=1)

    # --- several models (multi_model.py) -----------------------------------------------
    # SageMaker sets SAGEMAKER_MULTI_MODEL=true on a multi-model endpoint: the server starts with
    # no model and serves SageMaker's model-management API (/models). A MODEL_DIR of <name>/
    # model folders serves them too, without this variable (several models behind one async endpoint).
    multi_model: bool = Field(False, validation_alias=contract.MULTI_MODEL)
    # Memory the loaded models' engines may hold together (bytes of RSS). Unset: what the machine
    # (or the container's cgroup limit) has available. A load that does not fit is 507, or, with a
    # folders artifact, evicts the least recently used idle model first.
    models_memory_bytes: int | None = Field(None, ge=1)

    # --- lifecycle --------------------------------------------------------------------
    # SageMaker sends SIGKILL 30 s after SIGTERM: drain well inside that.
    graceful_shutdown_s: float = Field(25.0, ge=0)
    # One tiny inference before /ping turns 200, so the first real request does
    # not pay for lazy initialisation.
    warmup: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access_log: bool = False

    def public_dict(self) -> dict[str, object]:
        """The settings as logged at startup (the token is masked by SecretStr)."""
        return {k: (str(v) if v is not None else None) for k, v in self.model_dump().items()}


def describe_errors(exc: ValidationError) -> str:
    """A settings error in the names the operator set: the variable, its value, what is allowed.

    pydantic names the Python field (``max_request_bytes``); the person reading
    the container's log set ``MODEL_SERVER_MAX_REQUEST_BYTES``.
    """
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        info = Settings.model_fields.get(field)
        alias = info.validation_alias if info is not None and isinstance(info.validation_alias, str) else None
        variable = alias or (Settings.model_config.get("env_prefix", "") + field).upper()
        lines.append(f"{variable}={error.get('input')!r}: {error['msg']}")
    return "invalid settings: " + "; ".join(lines)
