"""The notifier's own environment (on top of the API's: buckets and result settings are shared).

Every variable is named in ENVIRONMENT; a bad one stops the Lambda with a message naming it.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api_handler.async_api.settings import CommaSeparated, EndpointUrl, model_from_environment
from api_handler.contract import NotifierEnv

from .schedule import MAX_VISIBILITY_SECONDS

ENVIRONMENT = {
    NotifierEnv.SIGNING_KEY_ARN: "secret_arn",
    NotifierEnv.QUEUE_URL: "queue_url",
    NotifierEnv.DEAD_LETTER_QUEUE_URL: "dead_letter_queue_url",
    NotifierEnv.ALLOWED_HOSTS: "allowed_hosts",
    NotifierEnv.ALLOW_LOOPBACK_HTTP: "allow_loopback_http",
    NotifierEnv.RETRY_BASE_SECONDS: "retry_base_seconds",
    NotifierEnv.RETRY_MAX_DELAY_SECONDS: "retry_max_delay_seconds",
    NotifierEnv.RETRY_WINDOW_SECONDS: "retry_window_seconds",
    NotifierEnv.CONNECT_TIMEOUT_SECONDS: "connect_timeout_seconds",
    NotifierEnv.READ_TIMEOUT_SECONDS: "read_timeout_seconds",
    NotifierEnv.MAX_PAYLOAD_BYTES: "max_payload_bytes",
    NotifierEnv.STATUS_BASE_URL: "status_base_url",
    NotifierEnv.SQS_ENDPOINT_URL: "sqs_endpoint_url",
    NotifierEnv.SECRETS_MANAGER_ENDPOINT_URL: "secrets_manager_endpoint_url",
}


class NotifierSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    secret_arn: str = Field(min_length=1)
    queue_url: str = Field(min_length=1)
    dead_letter_queue_url: str = Field(min_length=1)
    allowed_hosts: CommaSeparated = ()
    allow_loopback_http: bool = False
    # Production: 30 s, 1 min, 2 min ... capped at 1 h, for 24 h. make local: 2 s steps.
    retry_base_seconds: float = Field(30, ge=1, le=3600)
    retry_max_delay_seconds: float = Field(3600, ge=1, le=MAX_VISIBILITY_SECONDS)
    # Bounded by SQS's longest message retention (14 days) minus a margin to dead-letter it.
    retry_window_seconds: float = Field(86_400, ge=60, le=13 * 86_400)
    # A receiver gets this long to accept the connection and to answer: a slow receiver
    # cannot hold the Lambda (and the events behind it) for long.
    connect_timeout_seconds: float = Field(3, gt=0, le=10)
    read_timeout_seconds: float = Field(10, gt=0, le=30)
    # Largest event body; a result that would make it larger is sent as a presigned URL.
    max_payload_bytes: int = Field(262_144, ge=16_384, le=1024**2)
    # The API's base URL (stage included), for each event's statusUrl; relative without it.
    status_base_url: str = ""
    sqs_endpoint_url: EndpointUrl = None
    secrets_manager_endpoint_url: EndpointUrl = None

    @model_validator(mode="after")
    def _steps_fit(self) -> NotifierSettings:
        if self.retry_base_seconds > self.retry_max_delay_seconds:
            raise ValueError(
                f"{NotifierEnv.RETRY_BASE_SECONDS} ({self.retry_base_seconds}) must not exceed "
                f"{NotifierEnv.RETRY_MAX_DELAY_SECONDS} ({self.retry_max_delay_seconds})"
            )
        return self

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> NotifierSettings:
        return model_from_environment(cls, ENVIRONMENT, environ, what="notifier")
