"""Load the model once, on a background thread, and remember how that went.

Loading runs off the event loop so that the server listens at once and answers
/ping with 503 while loading (the toolkit says 200 before the model is there,
and SageMaker then routes requests to a container that cannot serve them).
torch and transformers are imported here, on that thread, for the same reason.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .settings import Settings
from .user_code import UserCode, find_user_module, import_user_module

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    model: Any  # Seq2SeqModel, PipelineModel, or whatever a user's model_fn returned
    user_code: UserCode | None
    task: str | None
    device: str


@dataclass
class ModelState:
    """What /ping reports. Written by the loader thread, read by the event loop."""

    status: str = "loading"  # loading -> ready | failed
    error: str | None = None
    loaded: LoadedModel | None = None
    started: float = field(default_factory=time.monotonic)
    _done: threading.Event = field(default_factory=threading.Event)

    def set_ready(self, loaded: LoadedModel) -> None:
        self.loaded, self.status = loaded, "ready"
        self._done.set()

    def set_failed(self, error: str) -> None:
        self.error, self.status = error, "failed"
        self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


def start_loading(settings: Settings, state: ModelState) -> threading.Thread:
    thread = threading.Thread(target=_load_into, args=(settings, state), name="model-loader", daemon=True)
    thread.start()
    return thread


class ModelSourceError(RuntimeError):
    """The model cannot be fetched from where the settings say it is."""


class DeviceUnavailable(RuntimeError):
    """The configured device cannot be used: the server must not report healthy."""


def _load_into(settings: Settings, state: ModelState) -> None:
    try:
        loaded = load(settings)
    except DeviceUnavailable as exc:
        # One line that says it all (no traceback: the cause is the host, not the code).
        log.error(str(exc), extra={"event": "device_unavailable", "device": settings.device})
        state.set_failed(f"{type(exc).__name__}: {exc}")
        return
    except BaseException as exc:
        log.exception("model load failed")
        state.set_failed(f"{type(exc).__name__}: {exc}")
        return
    log.info(
        "model ready",
        extra={
            "event": "model_ready",
            "task": loaded.task,
            "device": loaded.device,
            "user_code": loaded.user_code.defined if loaded.user_code else None,
            "load_seconds": round(time.monotonic() - state.started, 3),
        },
    )
    state.set_ready(loaded)


def resolve_model_dir(settings: Settings) -> Path:
    """MODEL_DIR, or a snapshot of HF_MODEL_ID downloaded at startup."""
    if not settings.hf_model_id:
        if not settings.model_dir.is_dir():
            raise FileNotFoundError(f"MODEL_DIR {settings.model_dir} does not exist and HF_MODEL_ID is not set")
        return settings.model_dir
    from huggingface_hub import snapshot_download

    token = settings.hf_api_token.get_secret_value() if settings.hf_api_token else None
    try:
        files = _repo_lister()(settings.hf_model_id, revision=settings.hf_model_revision, token=token)
    except Exception as exc:
        raise ModelSourceError(
            f"cannot list HF_MODEL_ID={settings.hf_model_id!r} at HF_MODEL_REVISION="
            f"{settings.hf_model_revision!r} on the Hugging Face Hub: {type(exc).__name__}: {exc}. "
            f"HF_MODEL_ID needs the Hub at start (no EnableNetworkIsolation, a route to the internet); "
            f"a private or gated model needs HF_API_TOKEN; otherwise ship the model in the model artifact "
            f"(MODEL_DIR)"
        ) from exc
    wanted = files_to_download(files)
    log.info(
        "downloading model",
        extra={
            "event": "download",
            "model_id": settings.hf_model_id,
            "revision": settings.hf_model_revision,
            "files": wanted,
            "skipped": len(files) - len(wanted),
        },
    )
    return Path(
        snapshot_download(
            repo_id=settings.hf_model_id, revision=settings.hf_model_revision, token=token, allow_patterns=wanted
        )
    )


def _repo_lister() -> Any:
    """huggingface_hub's ``list_repo_files``, as currently defined.

    The module-level function is a method bound to a default ``HfApi`` when
    huggingface_hub is imported, so a later replacement of
    ``HfApi.list_repo_files`` (a mirror's client, a test double) is only seen
    through a fresh ``HfApi``; a replaced module-level function is used as is.
    """
    import huggingface_hub

    lister = huggingface_hub.list_repo_files
    if hasattr(lister, "__func__") and lister.__func__ is not huggingface_hub.HfApi.list_repo_files:
        return huggingface_hub.HfApi().list_repo_files
    return lister


# Weight files transformers' from_pretrained looks for, in its order of
# preference: safetensors first (no pickle, memory-mapped), then PyTorch's
# pickle format. A hub repo often also carries TensorFlow, Flax, ONNX, GGUF,
# OpenVINO or fp16 "variant" copies of the same weights: several times the
# download, none of it loaded.
_WEIGHT_FORMATS = (
    (re.compile(r"model(-\d+-of-\d+)?\.safetensors"), "model.safetensors.index.json"),
    (re.compile(r"pytorch_model(-\d+-of-\d+)?\.bin"), "pytorch_model.bin.index.json"),
)
# Small top-level files loading may read: config.json, generation_config.json,
# the tokenizer (tokenizer.json, tokenizer_config.json, vocab.txt / vocab.json,
# merges.txt, spiece.model, special_tokens_map.json, added_tokens.json ...),
# image / audio processors (preprocessor_config.json) and chat templates.
_SUPPORT_SUFFIXES = (".json", ".txt", ".model", ".tiktoken", ".jinja")


def files_to_download(files: list[str]) -> list[str]:
    """The files of a hub repo that loading needs: one weight format, configs, tokenizer, ``code/``.

    ``code/`` is the toolkit's place for ``inference.py`` and its siblings.
    Raises ``FileNotFoundError`` naming the repo's files when it has no
    weights transformers can load.
    """
    top = [f for f in files if "/" not in f]
    weights: list[str] = []
    for pattern, index in _WEIGHT_FORMATS:
        weights = [f for f in top if pattern.fullmatch(f) or f == index]
        if weights:
            break
    if not weights:
        # Non-standard names (e.g. a single "weights.safetensors"), safetensors only.
        weights = [f for f in top if f.endswith(".safetensors")]
    if not weights:
        raise FileNotFoundError(
            f"HF_MODEL_ID has no weights transformers can load (model*.safetensors or pytorch_model*.bin); "
            f"files: {sorted(files)}"
        )
    other_indexes = {index for _, index in _WEIGHT_FORMATS} - set(weights)
    support = [f for f in top if f.endswith(_SUPPORT_SUFFIXES) and f not in weights and f not in other_indexes]
    code = [f for f in files if f.startswith("code/")]
    return sorted(set(weights + support + code))


def load(settings: Settings) -> LoadedModel:
    model_dir = resolve_model_dir(settings)
    # The toolkit reads code/ from /opt/ml/model even when the weights come from the hub.
    user_path = find_user_module(settings.sagemaker_program, settings.model_dir / "code", model_dir / "code")
    user_code = UserCode(import_user_module(user_path)) if user_path else None

    import torch  # heavy: only on this thread

    from .logs import route_library_logs

    route_library_logs()

    device = torch.device(_pick_device(settings, torch))
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(settings.torch_threads, torch.get_num_threads()))
    holder: dict[str, Any] = {}

    def default_loader() -> Any:
        holder["model"] = _load_default(model_dir, settings, device)
        return holder["model"]

    if user_code is not None:
        # A hook's context reports the GPU's index as MMS does (-1 without one).
        gpu_id = (device.index or 0) if device.type == "cuda" else -1
        model = user_code.load(model_dir, default_loader, gpu_id=gpu_id)
    else:
        model = default_loader()
    if settings.warmup and "model" in holder:
        holder["model"].warmup()
    return LoadedModel(model=model, user_code=user_code, task=getattr(model, "task", None), device=str(device))


def cpu_threads(configured: int | None, torch_default: int) -> int:
    """Intra-op threads for CPU inference.

    When torch's OpenMP threads take every CPU, the event loop and the
    tokenizer preempt one of them, and the others spin at the next barrier
    waiting for it. On a 2-CPU machine with 2 torch threads a batch of 16 ran
    at 62 req/s; with 1 thread, at 200 req/s (devtools/bench.py model).
    """
    if configured:
        return configured
    return max(1, min(torch_default, (os.cpu_count() or 1) - 1))


def _pick_device(settings: Settings, torch: Any) -> str:
    if settings.device == "auto":
        available, reasons = cuda_status(torch)
        if not available and reasons:
            # A GPU build that cannot use its GPU: say so, even where the CPU is an acceptable answer.
            log.warning(
                f"no usable GPU, serving on the CPU (MODEL_SERVER_DEVICE=auto): torch says: {reasons}",
                extra={"event": "cuda_unusable"},
            )
        return "cuda" if available else "cpu"
    if settings.device == "cuda":
        require_cuda(torch)
    return settings.device


def cuda_status(torch: Any) -> tuple[bool, str]:
    """``torch.cuda.is_available()``, and the reason torch gave when it is False (else "")."""
    with warnings.catch_warnings(record=True) as caught:
        # torch explains a driver mismatch only in a warning ("The NVIDIA
        # driver on your system is too old (found version 11040)...").
        warnings.simplefilter("always")
        available = bool(torch.cuda.is_available())
    return available, "" if available else "; ".join(dict.fromkeys(str(w.message).strip() for w in caught))


def require_cuda(torch: Any) -> None:
    """Raise ``DeviceUnavailable`` unless torch can use a GPU.

    The stack sets ``MODEL_SERVER_DEVICE=cuda`` on GPU instance types. A GPU
    host whose NVIDIA driver is older than the CUDA torch was built for makes
    ``torch.cuda.is_available()`` False: serving on the CPU then would leave
    an endpoint InService, billed as a GPU and many times slower, without a
    word. Refusing makes /ping answer 503 and the deployment fail visibly.
    SageMaker's default driver on ml.g4dn / ml.g5 is 470 (CUDA 11.4); the
    variant's ``InferenceAmiVersion`` selects a newer one
    (https://docs.aws.amazon.com/sagemaker/latest/dg/inference-gpu-drivers.html).
    """
    available, reasons = cuda_status(torch)
    if available:
        return
    reasons = reasons or "no reason given by torch"
    raise DeviceUnavailable(
        f"MODEL_SERVER_DEVICE=cuda but torch.cuda.is_available() is False: torch {torch.__version__} "
        f"built for CUDA {torch.version.cuda or 'none (a CPU-only build)'}, NVIDIA driver: {nvidia_driver_version()}; "
        f"torch says: {reasons}. Refusing to fall back to the CPU. Likely cause: the host's NVIDIA driver "
        f"is older than this CUDA needs (set the variant's InferenceAmiVersion to an AMI whose driver "
        f"supports it), or the instance has no GPU (use MODEL_SERVER_DEVICE=cpu on CPU instance types)."
    )


def nvidia_driver_version(path: Path = Path("/proc/driver/nvidia/version")) -> str:
    """The kernel driver's version line, which the container sees through /proc."""
    try:
        first = path.read_text().splitlines()[0]
    except (OSError, IndexError):
        return "none visible (no /proc/driver/nvidia/version)"
    match = re.search(r"Kernel Module\s+([\d.]+)", first)
    return match.group(1) if match else first.strip()


def _load_default(model_dir: Path, settings: Settings, device: Any) -> Any:
    import torch
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, pipeline

    from .pipeline_model import PipelineModel
    from .seq2seq import Seq2SeqModel
    from .tasks import check_servable, infer_task, is_seq2seq

    if not (model_dir / "config.json").is_file() and (model_dir / "model_index.json").is_file():
        # The toolkit serves these as text-to-image through diffusers, which this image does not ship.
        raise ValueError(
            f"{model_dir} is a diffusers pipeline (model_index.json): text-to-image is not served "
            "by this image (no diffusers); serve it with code/inference.py and diffusers installed"
        )
    config = AutoConfig.from_pretrained(model_dir)
    task = settings.hf_task or infer_task(config)
    # A task with no pipeline fails the load with its name, never a wrong task behind a healthy /ping.
    check_servable(task)
    # float16 only on a GPU: CPU half-precision kernels are slow or missing.
    dtype = torch.float16 if settings.half_precision and device.type == "cuda" else "auto"
    log.info("loading model", extra={"event": "load", "task": task, "device": str(device), "dtype": str(dtype)})
    if is_seq2seq(task):
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForSeq2SeqLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
        return Seq2SeqModel(model, tokenizer, task, device)
    if task == "question-answering":  # no pipeline in transformers 5: served by question_answering.py
        from transformers import AutoModelForQuestionAnswering

        from .question_answering import QuestionAnsweringModel

        model = AutoModelForQuestionAnswering.from_pretrained(model_dir, dtype=dtype).to(device).eval()
        return QuestionAnsweringModel(model, AutoTokenizer.from_pretrained(model_dir), device)
    # transformers types pipeline() for literal task names only; this one is HF_TASK (or the
    # config's), a runtime string that check_servable has already accepted.
    return PipelineModel(pipeline(task, model=str(model_dir), device=device, dtype=dtype))  # type: ignore[call-overload]
