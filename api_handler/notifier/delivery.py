"""One HTTP POST of a signed event to a callback URL, connected to an address checked beforehand.

The connection goes to `address` (resolved and checked by callback_url.resolve_public);
TLS verifies the certificate against the URL's host name (SNI and hostname check) and the
Host header names that host. Resolving once and connecting to that very address is what
keeps DNS rebinding out: an HTTP library given the URL would resolve the name again.
Redirects are not followed (a 3xx is a refusal): the new location was never checked.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from api_handler.async_api.callback_url import CallbackTarget

USER_AGENT = "async-inference-callbacks/1.0 (+https://www.standardwebhooks.com/)"
# Enough of a refusal's body to say why in lastError; the rest is never read.
_ERROR_BODY_BYTES = 200


@dataclass(frozen=True)
class Outcome:
    status: int | None  # HTTP status, None when no answer arrived
    error: str | None  # why it is not a success, for lastError

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """Timeouts, connection failures, 5xx and 429 are retried; any other answer is final."""
        return self.status is None or self.status == 429 or self.status >= 500


def post(
    target: CallbackTarget,
    address: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    connect_timeout: float,
    read_timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> Outcome:
    try:
        sock = socket.create_connection((address, target.port), timeout=connect_timeout)
    except OSError as error:
        return Outcome(None, f"cannot connect to {target.host} ({address}:{target.port}): {_describe(error)}")
    connection: http.client.HTTPConnection
    try:
        sock.settimeout(read_timeout)
        if target.scheme == "https":
            context = ssl_context or ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=target.host)
            connection = http.client.HTTPSConnection(target.host, target.port, timeout=read_timeout, context=context)
        else:  # http://127.0.0.1 in the local pipeline only (callback_url.py)
            connection = http.client.HTTPConnection(target.host, target.port, timeout=read_timeout)
        connection.sock = sock  # already connected: request() will not resolve the name again
        connection.request(
            "POST",
            target.path,
            body=body,
            headers={
                **headers,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
        )
        response = connection.getresponse()
        snippet = response.read(_ERROR_BODY_BYTES)
    except (OSError, http.client.HTTPException) as error:
        sock.close()
        return Outcome(None, f"no answer from {target.host}: {_describe(error)}")
    connection.close()
    if 200 <= response.status < 300:
        return Outcome(response.status, None)
    text = snippet.decode("utf-8", errors="replace").strip()
    return Outcome(response.status, f"HTTP {response.status} from {target.host}" + (f": {text[:120]}" if text else ""))


def _describe(error: BaseException) -> str:
    if isinstance(error, socket.timeout | TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}"[:200]
