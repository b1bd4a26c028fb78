"""python -m inference_client: submit, status, result, and invoke --wait from a terminal.

    python -m inference_client --url http://127.0.0.1:3000 invoke --wait --text "Summarise this"
    python -m inference_client --url https://abc.execute-api.eu-west-1.amazonaws.com/prod submit doc.json
    python -m inference_client status r0123...   # --url may come from INFERENCE_API_URL

Exit status: 0 done, 1 the inference failed, 2 bad usage, 3 the API refused or is
unreachable, 4 --wait gave up (the inference goes on; ask again with `status`).
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from inference_client.client import (
    DEFAULT_UPLOAD_THRESHOLD,
    ClientError,
    InferenceClient,
    InferenceFailed,
    NotReady,
    Result,
    WaitTimeout,
)

EXIT_FAILED, EXIT_USAGE, EXIT_API, EXIT_TIMEOUT = 1, 2, 3, 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m inference_client", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=os.environ.get("INFERENCE_API_URL"),
                        help="API base URL (default: $INFERENCE_API_URL)")
    signing = parser.add_mutually_exclusive_group()
    signing.add_argument("--sign", dest="sign", action="store_true", default=None,
                         help="SigV4-sign requests (default for any host but 127.0.0.1/localhost)")
    signing.add_argument("--no-sign", dest="sign", action="store_false", help="send requests unsigned")
    parser.add_argument("--region", help="region for signing (default: from the execute-api URL, then AWS config)")
    parser.add_argument("--http-timeout", type=float, default=35.0, help="seconds per HTTP request (default 35)")
    commands = parser.add_subparsers(dest="command", required=True)

    def add_input(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("file", nargs="?", help="payload file, or - for stdin (default: stdin unless --text)")
        sub.add_argument("--text", help="send this text (Content-Type text/plain) instead of a file")
        sub.add_argument("--content-type", help="payload Content-Type (default: guessed from the file / content)")
        sub.add_argument("--accept", help="Accept passed to the model")
        sub.add_argument("--idempotency-key", help="reuse a key to make a repeated submit a no-op (default: random)")
        sub.add_argument("--invocation-timeout", type=int, metavar="SECONDS",
                         help="InvocationTimeoutSeconds for this request (1-3600)")
        sub.add_argument("--ttl", type=int, metavar="SECONDS", help="RequestTTLSeconds for this request (60-21600)")
        sub.add_argument("--upload", action="store_true", help="always use the presigned upload flow")
        sub.add_argument("--upload-threshold", type=int, default=DEFAULT_UPLOAD_THRESHOLD, metavar="BYTES",
                         help=f"payloads above this size are uploaded first (default {DEFAULT_UPLOAD_THRESHOLD})")

    add_input(commands.add_parser("submit", help="start an inference and print its id"))
    status = commands.add_parser("status", help="print an inference's status document")
    status.add_argument("inference_id")
    result = commands.add_parser("result", help="print (or save) a completed inference's output")
    result.add_argument("inference_id")
    result.add_argument("-o", "--output", help="write the output bytes to this file")
    invoke = commands.add_parser("invoke", help="submit, and with --wait poll until done and print the output")
    add_input(invoke)
    invoke.add_argument("--wait", action="store_true", help="poll with backoff until Completed or Failed")
    invoke.add_argument("--wait-timeout", type=float, default=None, metavar="SECONDS",
                        help="give up waiting after this long (the inference goes on)")
    invoke.add_argument("--max-interval", type=float, default=15.0, metavar="SECONDS",
                        help="longest pause between polls (default 15)")
    invoke.add_argument("-o", "--output", help="write the output bytes to this file")
    invoke.add_argument("--quiet", action="store_true", help="no progress display")
    return parser


def read_payload(args: argparse.Namespace, stdin: BinaryIO) -> tuple[bytes, str]:
    """(payload, content type) from --text, a file or stdin."""
    if args.text is not None:
        if args.file:
            raise ClientError("give either --text or a file, not both")
        return args.text.encode("utf-8"), args.content_type or "text/plain; charset=utf-8"
    if args.file in (None, "-"):
        payload = stdin.read()
        guessed = None
    else:
        path = Path(args.file)
        if not path.is_file():
            raise ClientError(f"{args.file}: no such file")
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


def emit_result(result: Result, output: str | None, stdout: TextIO) -> None:
    if output:
        Path(output).write_bytes(result.body)
        print(f"wrote {len(result.body)} bytes ({result.content_type}) to {output}", file=sys.stderr)
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
    stdout.buffer.write(result.body) if hasattr(stdout, "buffer") else stdout.write(result.text())


def main(argv: list[str] | None = None, *, stdin: BinaryIO | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("the API URL is required: --url URL or INFERENCE_API_URL")
    try:
        client = InferenceClient(
            args.url,
            sign=args.sign,
            region=args.region,
            timeout=args.http_timeout,
            upload_threshold=getattr(args, "upload_threshold", DEFAULT_UPLOAD_THRESHOLD),
        )
        if args.command in ("submit", "invoke"):
            payload, content_type = read_payload(args, stdin or sys.stdin.buffer)
            accepted = client.submit(
                payload,
                content_type,
                accept=args.accept,
                idempotency_key=args.idempotency_key,
                invocation_timeout_seconds=args.invocation_timeout,
                request_ttl_seconds=args.ttl,
                force_upload=args.upload,
            )
            if args.command == "submit" or not args.wait:
                stdout.write(json.dumps(accepted, indent=2) + "\n")
                return 0
            progress = Progress(stderr, enabled=not args.quiet)
            document = client.wait(accepted["inferenceId"], timeout=args.wait_timeout,
                                   max_interval=args.max_interval, on_progress=progress)
            emit_result(client.result(accepted["inferenceId"], document), args.output, stdout)
            return 0
        if args.command == "status":
            document, _ = client.status(args.inference_id)
            stdout.write(json.dumps(document, indent=2) + "\n")
            return 0
        if args.command == "result":
            emit_result(client.result(args.inference_id), args.output, stdout)
            return 0
    except InferenceFailed as error:
        stderr.write(f"error: {error}\n")
        return EXIT_FAILED
    except NotReady as error:
        stderr.write(f"not ready: {error}; try again later\n")
        return EXIT_TIMEOUT
    except WaitTimeout as error:
        stderr.write(f"gave up waiting: {error}\n")
        return EXIT_TIMEOUT
    except ClientError as error:
        stderr.write(f"error: {error}\n")
        return EXIT_USAGE if "give either" in str(error) or "no such file" in str(error) else EXIT_API
    parser.error(f"unknown command {args.command}")  # pragma: no cover - argparse enforces the choices
    return EXIT_USAGE
