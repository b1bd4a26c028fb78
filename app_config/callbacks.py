"""Completion callbacks per environment: who may be called back, and how hard we try.

The notifier exists only in async hosting (realtime/serverless answer the result in the
request itself). Defaults: any public https host, retries for 24 hours starting at 30 s and
doubling to at most 1 h between attempts, 256 KiB events, 3 s to connect, 10 s to answer.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, model_validator

from api_handler.notifier.schedule import MAX_VISIBILITY_SECONDS
from app_config.fields import StrictModel, check_not_above, each_matching

# A DNS name in lower case, optionally "*." for its subdomains (no IP literals: the point of
# an allow-list is naming the receivers; addresses are checked after resolution anyway).
_HOST_ENTRY = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# SQS ChangeMessageVisibility's ceiling, which the notifier's schedule is built on: the longest
# single wait between two attempts.
MAX_RETRY_DELAY_SECONDS = MAX_VISIBILITY_SECONDS


class CallbacksConfig(StrictModel):
    enabled: bool = True
    # Empty: any public https host. Else only these ("hooks.example.com", "*.example.com").
    allowed_hosts: Annotated[
        tuple[str, ...],
        each_matching(_HOST_ENTRY, "is not a lower-case DNS name like 'hooks.example.com' or '*.example.com'"),
    ] = ()
    retry_base_seconds: int = Field(30, ge=1, le=3600)
    retry_max_delay_seconds: int = Field(3600, ge=1, le=MAX_RETRY_DELAY_SECONDS)
    # After this, the event goes to the dead-letter queue and the alarm fires. SQS keeps a
    # message at most 14 days; a day of that is left for operators to redrive it.
    retry_window_hours: int = Field(24, ge=1, le=13 * 24)
    max_payload_bytes: int = Field(262_144, ge=16_384, le=1024**2)
    connect_timeout_seconds: float = Field(3, gt=0, le=10)
    read_timeout_seconds: float = Field(10, gt=0, le=30)
    # Reserved concurrency of the notifier: at most this many deliveries at once (also what it
    # takes from the account's Lambda pool).
    max_concurrency: int = Field(5, ge=2, le=100)

    @model_validator(mode="after")
    def _steps(self) -> CallbacksConfig:
        check_not_above(self, "retry_base_seconds", "retry_max_delay_seconds")
        if self.retry_max_delay_seconds > self.retry_window_hours * 3600:
            raise ValueError(
                f"retry_max_delay_seconds ({self.retry_max_delay_seconds}) must fit in the retry window "
                f"({self.retry_window_hours} h)"
            )
        return self
