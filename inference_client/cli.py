"""python -m inference_client: submit, status, result, and invoke --wait from a terminal.

    python -m inference_client --url http://127.0.0.1:3000 invoke --wait --text "Summarise this"
    python -m inference_client --url https://abc.execute-api.eu-west-1.amazonaws.com/prod submit doc.json
    python -m inference_client status r0123...   # --url may come from INFERENCE_API_URL
    python -m inference_client invoke --wait --text "Summarise this" --url "$API_URL" -o results/
    python -m inference_client batch s3://BUCKET/batch/in/ s3://BUCKET/batch/out/ --model-name NAME

Global options (--url, --sign/--no-sign, --region, --http-timeout) go before or after the command.

Exit status: 0 done, 1 the inference failed, 2 bad usage, 3 the API refused or is
unreachable, 4 --wait gave up (the inference goes on; ask again with `status`).
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from inference_client.batch_cli import add_batch_command, run_batch
from inference_client.client import DEFAULT_UPLOAD_THRESHOLD, InferenceClient, Result
from inference_client.exits import API_FAILURES, UsageError, exit_status
from inference_client.listen import add_listen_command, run_listen


def add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """--url, signing and timeouts. Added to the main parser (with defaults) and to every
    subcommand (without: ``argparse.SUPPRESS`` keeps a value given before the subcommand),
    so `invoke --wait --url URL` works as well as `--url URL invoke --wait`."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--url", default=default(os.environ.get("INFERENCE_API_URL")), help="API base URL (default: $INFERENCE_API_URL)"
    )
    signing = parser.add_mutually_exclusive_group()
    signing.add_argument(
        "--sign",
        dest="sign",
        action="store_true",
        default=default(None),
        help="SigV4-sign requests (default for any host but 127.0.0.1/localhost)",
    )
    signing.add_argument(
        "--no-sign", dest="sign", action="store_false", default=default(None), help="send requests unsigned"
    )
    parser.add_argument(
        "--region",
        default=default(None),
        help="region for signing (default: from the execute-api URL, then AWS config)",
    )
    parser.add_argument(
        "--http-timeout", type=float, default=default(35.0), help="seconds per HTTP request (default 35)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m inference_client", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_global_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", required=True)

    def add_input(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("file", nargs="?", help="payload file, or - for stdin (default: stdin unless --text)")
        sub.add_argument("--text", help="send this text (Content-Type text/plain) instead of a file")
        sub.add_argument("--content-type", help="payload Content-Type (default: guessed from the file / content)")
        sub.add_argument("--accept", help="Accept passed to the model")
        sub.add_argument("--idempotency-key", help="reuse a key to make a repeated submit a no-op (default: random)")
        sub.add_argument(
            "--invocation-timeout",
            type=int,
            metavar="SECONDS",
            help="InvocationTimeoutSeconds for this request (1-3600)",
        )
        sub.add_argument("--ttl", type=int, metavar="SECONDS", help="RequestTTLSeconds for this request (60-21600)")
        sub.add_argument(
            "--callback",
            metavar="URL",
            help="POST the signed completion event to this https:// URL (docs/api.md, Callbacks)",
        )
        sub.add_argument(
            "--model",
            metavar="NAME",
            help="the endpoint's model to run (several models behind one endpoint; docs/api.md)",
        )
        sub.add_argument("--upload", action="store_true", help="always use the presigned upload flow")
        sub.add_argument(
            "--upload-threshold",
            type=int,
            default=DEFAULT_UPLOAD_THRESHOLD,
            metavar="BYTES",
            help=f"payloads above this size are uploaded first (default {DEFAULT_UPLOAD_THRESHOLD})",
        )

    def add_command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        add_global_options(sub, defaults=False)
        return sub

    def add_output(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "-o",
            "--output",
            metavar="PATH",
            help="write the output bytes to this file, or into this directory (an existing one, "
            "or a path ending in /) as <inferenceId>.<ext> (default: stdout)",
        )

    submit = add_command("submit", "start an inference and print its id")
    add_input(submit)
    status = add_command("status", "print an inference's status document")
    status.add_argument("inference_id")
    result = add_command("result", "print (or save) a completed inference's output")
    result.add_argument("inference_id")
    add_output(result)
    invoke = add_command("invoke", "submit, and with --wait poll until done and print the output")
    add_input(invoke)
    invoke.add_argument("--wait", action="store_true", help="poll with backoff until Completed or Failed")
    invoke.add_argument(
        "--wait-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up waiting after this long (the inference goes on)",
    )
    invoke.add_argument(
        "--max-interval", type=float, default=15.0, metavar="SECONDS", help="longest pause between polls (default 15)"
    )
    add_output(invoke)
    for sub in (submit, invoke):
        sub.add_argument("--quiet", action="store_true", help="no progress display (upload, polling)")
    add_batch_command(commands)
    add_listen_command(commands)
    return parser


def read_payload(args: argparse.Namespace, stdin: BinaryIO) -> tuple[bytes, str]:
    """(payload, content type) from --text, a file or stdin."""
    if args.text is not None:
        if args.file:
            raise UsageError("give either --text or a file, not both")
        return args.text.encode("utf-8"), args.content_type or "text/plain; charset=utf-8"
    if args.file in (None, "-"):
        payload = stdin.read()
        guessed = None
    else:
        path = Path(args.file)
        if not path.is_file():
            raise UsageError(f"{args.file}: no such file")
        payload = path.read_bytes()
        guessed = mimetypes.guess_type(path.name)[0]
    return payload, args.content_type or guessed or sniff_content_type(payload)


def sniff_content_type(payload: bytes) -> str:
    try:
        json.loads(payload)
        return "application/json"
    except ValueError:
        pass
    try:
        payload.decode("utf-8")
        return "text/plain; charset=utf-8"
    except UnicodeDecodeError:
        return "application/octet-stream"


class Progress:
    """Elapsed time and status on one self-rewriting line (a terminal) or one line per change (a log)."""

    def __init__(self, stream: TextIO, enabled: bool = True) -> None:
        self.stream, self.enabled = stream, enabled
        self.tty = stream.isatty()
        self.last: str | None = None
        self.polls = 0

    def __call__(self, elapsed: float, document: dict[str, Any]) -> None:
        self.polls += 1
        if not self.enabled:
            return
        state = str(document.get("status"))
        line = f"[{elapsed:7.1f}s] {document.get('inferenceId')}  {state}"
        if self.tty:
            self.stream.write("\r" + line + f"  (poll {self.polls})" + " " * 8)
            if state in ("Completed", "Failed"):
                self.stream.write("\n")
        elif state != self.last or state in ("Completed", "Failed"):
            self.stream.write(line + "\n")
        self.stream.flush()
        self.last = state


# Payloads at least this large show upload progress: smaller ones go out in a blink.
PROGRESS_MIN_BYTES = 1024 * 1024


class UploadProgress:
    """Bytes sent, total and rate while a payload goes out: the client's ``on_upload_progress`` hook.

    On a terminal one self-rewriting line, at most every ``interval`` seconds; in a
    log one line when the upload ends (a line per block would flood it).
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        enabled: bool = True,
        clock: Any = time.monotonic,
        interval: float = 0.2,
        min_bytes: int = PROGRESS_MIN_BYTES,
    ) -> None:
        self.stream, self.enabled, self.clock = stream, enabled, clock
        self.tty = stream.isatty()
        self.interval, self.min_bytes = interval, min_bytes
        self.started: float | None = None
        self.shown_at = float("-inf")

    def __call__(self, sent: int, total: int) -> None:
        if not self.enabled or total < self.min_bytes:
            return
        now = self.clock()
        if sent == 0 or self.started is None:  # a new attempt (a retry starts from zero again)
            self.started, self.shown_at = now, float("-inf")
        elapsed = max(now - self.started, 1e-6)
        line = (
            f"uploading {format_bytes(sent)} / {format_bytes(total)} ({100 * sent // max(total, 1)}%) "
            f"at {format_bytes(sent / elapsed)}/s"
        )
        if sent >= total:
            self.stream.write(
                ("\r" if self.tty else "")
                + line.replace("uploading", "uploaded", 1)
                + f" in {elapsed:.1f} s"
                + (" " * 8 if self.tty else "")
                + "\n"
            )
        elif self.tty and now - self.shown_at >= self.interval:
            self.stream.write("\r" + line + " " * 8)
            self.shown_at = now
        else:
            return
        self.stream.flush()


def format_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"  # pragma: no cover - the loop returns


# File extensions for results saved into a directory under the inference id.
_EXTENSIONS = {"application/json": ".json", "text/plain": ".txt", "text/csv": ".csv", "application/x-npy": ".npy"}


def output_path(output: str, inference_id: str, content_type: str | None) -> Path:
    """``output`` itself, or ``output/<inferenceId><ext>`` when it names a directory."""
    path = Path(output).expanduser()
    if not (output.endswith(("/", os.sep)) or path.is_dir()):
        return path
    media_type = (content_type or "").split(";")[0].strip().lower()
    extension = _EXTENSIONS.get(media_type) or mimetypes.guess_extension(media_type) or ".bin"
    path.mkdir(parents=True, exist_ok=True)
    return path / f"{inference_id}{extension}"


def emit_result(result: Result, output: str | None, stdout: TextIO, stderr: TextIO | None = None) -> None:
    stderr = stderr or sys.stderr
    if output:
        inference_id = str(result.document.get("inferenceId") or "result")
        path = output_path(output, inference_id, result.content_type)
        path.write_bytes(result.body)
        print(f"wrote {len(result.body)} bytes ({result.content_type}) to {path}", file=stderr)
        return
    if result.document.get("outputEncoding") == "json" or (result.content_type or "").startswith("application/json"):
        try:
            stdout.write(json.dumps(json.loads(result.body), indent=2, ensure_ascii=False) + "\n")
            return
        except ValueError:
            pass
    if (result.content_type or "").startswith("text/") or result.document.get("outputEncoding") == "text":
        stdout.write(result.text() + "\n")
        return
    if stdout.isatty():
        # Raw bytes would garble the terminal; the result stays on the server, nothing is lost.
        raise UsageError(
            f"the result is {len(result.body)} bytes of {result.content_type or 'binary data'}: "
            f"save it with -o FILE, or -o DIR/ for DIR/{result.document.get('inferenceId')}<ext>, "
            "or redirect stdout to a file"
        )
    stdout.buffer.write(result.body) if hasattr(stdout, "buffer") else stdout.write(result.text())


def main(
    argv: list[str] | None = None,
    *,
    stdin: BinaryIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "batch":  # SageMaker's API directly (AWS credentials), not the HTTPS API
        return run_batch(args, stdout, stderr)
    if args.command == "listen":  # a local receiver: no API involved
        return run_listen(args, stdout, stderr)
    if not args.url:
        parser.error("the API URL is required: --url URL or INFERENCE_API_URL")
    if args.command not in _API_COMMANDS:  # pragma: no cover - argparse enforces the choices
        parser.error(f"unknown command {args.command}")
    return exit_status(lambda: _call_api(args, stdin or sys.stdin.buffer, stdout, stderr), API_FAILURES, stderr)


_API_COMMANDS = ("submit", "invoke", "status", "result")


def _call_api(args: argparse.Namespace, stdin: BinaryIO, stdout: TextIO, stderr: TextIO) -> int:
    """One of `_API_COMMANDS` against the API at ``--url``; raises the client's errors."""
    client = InferenceClient(
        args.url,
        sign=args.sign,
        region=args.region,
        timeout=args.http_timeout,
        upload_threshold=getattr(args, "upload_threshold", DEFAULT_UPLOAD_THRESHOLD),
        on_upload_progress=UploadProgress(stderr, enabled=not getattr(args, "quiet", False)),
    )
    if args.command == "status":
        document, _ = client.status(args.inference_id)
        stdout.write(json.dumps(document, indent=2) + "\n")
        return 0
    if args.command == "result":
        emit_result(client.result(args.inference_id), args.output, stdout, stderr)
        return 0
    payload, content_type = read_payload(args, stdin)
    accepted = client.submit(
        payload,
        content_type,
        accept=args.accept,
        idempotency_key=args.idempotency_key,
        invocation_timeout_seconds=args.invocation_timeout,
        request_ttl_seconds=args.ttl,
        force_upload=args.upload,
        callback_url=args.callback,
        model=args.model,
    )
    if args.command == "submit" or not args.wait:
        stdout.write(json.dumps(accepted, indent=2) + "\n")
        return 0
    progress = Progress(stderr, enabled=not args.quiet)
    document = client.wait(
        accepted["inferenceId"], timeout=args.wait_timeout, max_interval=args.max_interval, on_progress=progress
    )
    emit_result(client.result(accepted["inferenceId"], document), args.output, stdout, stderr)
    return 0
