"""Delivery state of an inference's completion callback, as GET /invocations/{id} shows it.

The notifier writes one small JSON object per inference next to its receipt
(`requests/<id>/callback.json`), overwritten after each attempt; the API reads it. S3 is
where the receipt already lives, so the state needs no table of its own, and the notifier's
write permission is bounded to keys of exactly this name.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from api_handler.contract import request_key

STATE_FILE = "callback.json"

# Pending: nothing attempted yet (the inference may still run). Retrying: an attempt failed
# with a retryable outcome and another is scheduled. Delivered: the receiver answered 2xx.
# Failed: the receiver refused (4xx other than 429), the URL was refused at delivery, or the
# retry window ran out (the event is then in the dead-letter queue).
STATUSES = ("Pending", "Retrying", "Delivered", "Failed")


def state_key(inference_id: str) -> str:
    return request_key(inference_id, STATE_FILE)


@dataclass(frozen=True)
class CallbackState:
    status: str = "Pending"
    attempts: int = 0
    # camelCase: the JSON field names of the status document, like Receipt's.
    lastError: str | None = None  # noqa: N815
    webhookId: str | None = None  # noqa: N815
    updatedAt: str | None = None  # noqa: N815

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | None) -> CallbackState:
        """The stored state; Pending when there is none (or it is unreadable: the next
        attempt rewrites it)."""
        if not data:
            return cls()
        try:
            raw = json.loads(data)
            state = cls(**{name: raw[name] for name in cls.__dataclass_fields__ if name in raw})
        except (ValueError, TypeError):
            return cls()
        return state if state.status in STATUSES else cls()

    def public(self) -> dict[str, Any]:
        """The `callback` member of the status document."""
        return {"status": self.status, "attempts": self.attempts, "lastError": self.lastError}
