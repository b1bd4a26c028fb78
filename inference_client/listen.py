"""`inference-client listen`: a small local receiver of completion callbacks, for trying them.

It verifies each delivery's Standard Webhooks signature (api_handler/async_api/webhooks.py's
rules: HMAC-SHA256 over "id.timestamp.body", timestamp within five minutes), answers 204 to
a verified one, 401 to anything else, and de-duplicates by `webhook-id` (a repeated id is
answered 204 again and reported as a duplicate, never as a second event). `fail_first`
answers the first N deliveries with `fail_status` (503 by default) to watch the service retry.

    python -m inference_client listen --port 8765 --secret "$CALLBACK_SECRET"
    python -m inference_client invoke --text hello --callback http://127.0.0.1:8765/hook   # make local only

Only `make local` delivers to http://127.0.0.1; a deployed stack needs an https:// URL on a
public host (put this receiver behind a tunnel or a TLS proxy to try it against AWS).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from inference_client.exits import EXIT_API, EXIT_TIMEOUT, EXIT_USAGE

TOLERANCE_SECONDS = 300
MAX_BODY_BYTES = 2 * 1024 * 1024


class InvalidSignature(ValueError):
    pass


def verify_delivery(secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> str:
    """The webhook-id of a delivery whose signature verifies; InvalidSignature otherwise.

    Standalone on purpose (this is the sample docs/api.md shows): a receiver needs only the
    standard library, not this project.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, signatures = lower.get("webhook-id"), lower.get("webhook-timestamp"), lower.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        raise InvalidSignature("missing webhook-id / webhook-timestamp / webhook-signature")
    if not stamp.isdigit() or abs((time.time() if now is None else now) - int(stamp)) > TOLERANCE_SECONDS:
        raise InvalidSignature(f"webhook-timestamp {stamp!r} is not within {TOLERANCE_SECONDS} s of now")
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise InvalidSignature("the secret is not base64 (with or without whsec_)") from None
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    if not any(hmac.compare_digest(expected.encode(), sig.encode()) for sig in signatures.split()):
        raise InvalidSignature("no signature matches (wrong secret or altered body)")
    return msg_id


@dataclass
class Delivery:
    webhook_id: str | None
    answered: int
    verified: bool
    duplicate: bool
    event: dict[str, Any] | None
    error: str | None
    headers: dict[str, str]
    body: bytes


@dataclass
class CallbackReceiver:
    secret: str
    host: str = "127.0.0.1"
    port: int = 0
    path: str = "/hook"
    fail_first: int = 0
    fail_status: int = 503
    on_delivery: Callable[[Delivery], None] | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    _accepted: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("start() the receiver first")
        return f"http://{self.host}:{self._server.server_address[1]}{self.path}"

    @property
    def accepted(self) -> list[Delivery]:
        """Verified, answered 2xx, first of their webhook-id: one per event."""
        return [d for d in self.deliveries if d.verified and 200 <= d.answered < 300 and not d.duplicate]

    def start(self) -> CallbackReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self._answer(413)
                    return
                status = receiver.receive(dict(self.headers.items()), self.rfile.read(length))
                self._answer(status)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        try:
            msg_id: str | None = verify_delivery(self.secret, headers, body)
            error = None
        except InvalidSignature as problem:
            msg_id, error = None, str(problem)
        with self._lock:
            failing = error is None and self.fail_first > 0
            if failing:
                self.fail_first -= 1
            status = 401 if error else self.fail_status if failing else 204
            duplicate = bool(msg_id) and not failing and msg_id in self._accepted
            if msg_id and status == 204:
                self._accepted.add(msg_id)
            try:
                event = json.loads(body) if error is None else None
            except ValueError:
                event = None
            delivery = Delivery(msg_id, status, error is None, duplicate, event, error, headers, body)
            self.deliveries.append(delivery)
        if self.on_delivery:
            self.on_delivery(delivery)
        return status

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def describe(delivery: Delivery) -> str:
    """One line per delivery for the terminal."""
    if not delivery.verified:
        return f"REFUSED (401): {delivery.error}"
    data = (delivery.event or {}).get("data", {})
    what = f"{(delivery.event or {}).get('type')} {data.get('inferenceId')} {data.get('status')}"
    if delivery.answered >= 300:
        return f"{delivery.webhook_id}: {what} - answered {delivery.answered} (simulated failure)"
    return f"{delivery.webhook_id}: {what}" + (" (duplicate, already accepted)" if delivery.duplicate else "")


def add_listen_command(commands: Any) -> None:
    """`listen`: the receiver as a command (inference_client/cli.py adds it)."""
    listen = commands.add_parser("listen", help="receive completion callbacks locally and verify their signatures")
    listen.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    listen.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    listen.add_argument("--path", default="/hook", help="URL path of the receiver (default /hook)")
    listen.add_argument(
        "--secret",
        default=os.environ.get("CALLBACK_SECRET"),
        help="the signing secret (default: $CALLBACK_SECRET; `make local` prints it; deployed: "
        "aws secretsmanager get-secret-value --secret-id <CallbackSecretArn output>)",
    )
    listen.add_argument(
        "--fail-first",
        type=int,
        default=0,
        metavar="N",
        help="answer the first N verified deliveries 503, to watch the retries",
    )
    listen.add_argument(
        "--count", type=int, default=None, metavar="N", help="exit after N events were accepted (default: until Ctrl-C)"
    )
    listen.add_argument(
        "--timeout", type=float, default=None, metavar="SECONDS", help="with --count: give up (exit 4) after this long"
    )


def run_listen(args: Any, stdout: Any, stderr: Any) -> int:
    if not args.secret:
        stderr.write("error: the signing secret is required: --secret or CALLBACK_SECRET\n")
        return EXIT_USAGE

    def show(delivery: Delivery) -> None:
        stdout.write(describe(delivery) + "\n")
        stdout.flush()

    receiver = CallbackReceiver(
        secret=args.secret, host=args.host, port=args.port, path=args.path, fail_first=args.fail_first, on_delivery=show
    )
    try:
        receiver.start()
    except OSError as error:
        stderr.write(f"error: cannot listen on {args.host}:{args.port}: {error}\n")
        return EXIT_API
    stderr.write(f"listening on {receiver.url} (Ctrl-C to stop)\n")
    stderr.flush()
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    try:
        while args.count is None or len(receiver.accepted) < args.count:
            if deadline is not None and time.monotonic() > deadline:
                stderr.write(f"gave up: {len(receiver.accepted)} of {args.count} events after {args.timeout} s\n")
                return EXIT_TIMEOUT
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    return 0
