"""Small HTTP servers standing in for a peer (an API, a model container) in tests.

A test subclasses ``StubHandler`` with the ``do_GET`` / ``do_POST`` it needs and runs it with
``serving``; the stub answers with ``send_json``. The standard library's server is enough: the
client under test speaks plain HTTP/1.1 and only the request it sends and the answer it gets
matter.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StubHandler(BaseHTTPRequestHandler):
    """A request handler that answers JSON and keeps quiet (no access log on the test's stderr)."""

    def send_json(self, status: int, document: Any, headers: Mapping[str, str] | None = None) -> None:
        """Answer ``status`` with ``document`` (bytes are sent as they are, anything else as JSON).

        Content-Length always: an HTTP/1.1 client keeps the connection open and needs it to
        know where the body ends."""
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on a free 127.0.0.1 port from a daemon thread, yielding its base URL;
    stopped and its socket closed on the way out, whatever the test did."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
