"""Signing callback deliveries the Standard Webhooks way (https://www.standardwebhooks.com/).

Each delivery carries three headers:
    webhook-id         the event's id: the same on every retry, so receivers de-duplicate
    webhook-timestamp  integer seconds since the epoch, when this attempt was signed
    webhook-signature  "v1,<base64 of HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>"
The key is the base64-decoded secret (a "whsec_" prefix, if present, is not part of it).
The secret Secrets Manager generates here is 48 letters and digits: valid base64 (36 bytes
once decoded, 48 x log2(62) = about 285 bits of randomness), so every Standard Webhooks
library accepts it as is.
Receivers refuse timestamps more than five minutes from their clock (replay protection);
each retry is signed again with a fresh timestamp for that reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's prefix of a secret's text, not a secret
SIGNATURE_VERSION = "v1"
TOLERANCE_SECONDS = 5 * 60


class SignatureError(ValueError):
    """A delivery whose headers or signature do not verify."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret ("whsec_<base64>" or the bare base64)."""
    text = secret.strip()
    text = text.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the signing secret is not base64 (with or without the whsec_ prefix)") from None
    if len(key) < 24:
        raise SignatureError(f"the signing secret decodes to {len(key)} bytes; at least 24 are needed")
    return key


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one delivery."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signed_headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, webhook_id, timestamp, body),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float, tolerance: int = TOLERANCE_SECONDS) -> str:
    """The webhook-id of a delivery whose signature and timestamp check out; SignatureError otherwise.

    Any of several space-separated signatures may match (a sender rotating its secret signs
    with both keys). Comparison in constant time.
    """
    lower = {name.lower(): value for name, value in headers.items()}
    webhook_id, stamp, signatures = (lower.get(n) for n in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (webhook_id and stamp and signatures):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not stamp.isascii() or not stamp.isdigit():
        raise SignatureError(f"webhook-timestamp {stamp[:20]!r} is not whole seconds")
    if abs(now - int(stamp)) > tolerance:
        raise SignatureError(f"webhook-timestamp {stamp} is more than {tolerance} s from now ({int(now)})")
    expected = signature(secret, webhook_id, int(stamp), body).encode()
    for candidate in signatures.split(" "):
        if hmac.compare_digest(candidate.encode(), expected):
            return webhook_id
    raise SignatureError("no webhook-signature matches the body (wrong secret, or the body was changed)")
