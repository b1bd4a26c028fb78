"""What the notifier does with one queued SageMaker notification: plain code, clients injected.

notification -> receipt (no callback, or no caller: nothing to do)
             -> event {type, timestamp, data: the GET /invocations/{id} document}
             -> checked address -> signed POST -> state in S3
             -> 2xx: Delivered | 429/5xx/timeout: hide the message for the backoff delay
                and report it failed (it comes back) | past the window: dead-letter queue
             -> other 4xx / 3xx / refused address: Failed, no retry
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from api_handler.async_api import logic
from api_handler.async_api.callback_state import CallbackState, state_key
from api_handler.async_api.callback_url import CallbackPolicy, Resolver, UnsafeDestination, parse_target, resolve_public
from api_handler.async_api.service import Deadline, InferenceService
from api_handler.async_api.webhooks import signed_headers

from . import delivery
from .schedule import backoff_seconds
from .settings import NotifierSettings

log = logging.getLogger(__name__)

# A very fast inference can finish before the API has written its receipt (the receipt is
# written after InvokeEndpointAsync answers). Wait this long for it before deciding the
# inference is not one of ours (ids of other clients of the endpoint have no receipt).
RECEIPT_WAIT_SECONDS = 300
EVENT_TYPES = {"Completed": "inference.completed", "Failed": "inference.failed"}


class RetryLater(Exception):
    """The message stays on the queue (reported as a batch item failure); its visibility
    timeout was set to the backoff delay, so SQS hands it back then."""


@dataclass(frozen=True)
class Notification:
    inference_id: str
    status: str  # Completed | Failed
    event_time: str | None


def parse_notification(body: str) -> Notification | None:
    """SageMaker's async notification (raw, or inside an SNS envelope), or None for anything
    else (the TestNotification SageMaker sends when the endpoint is created or updated)."""
    try:
        document = json.loads(body)
        if isinstance(document, dict) and document.get("Type") == "Notification" and "Message" in document:
            document = json.loads(document["Message"])
    except (TypeError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("eventName") != "InferenceResult":
        return None
    inference_id, status = document.get("inferenceId"), document.get("invocationStatus")
    if not isinstance(inference_id, str) or status not in EVENT_TYPES:
        return None
    event_time = document.get("eventTime")
    return Notification(inference_id, status, event_time if isinstance(event_time, str) else None)


def webhook_id(notification: Notification) -> str:
    """Stable across retries AND across duplicate SNS deliveries of one completion."""
    return f"msg_{notification.inference_id}_{notification.status.lower()}"


@dataclass
class Notifier:
    settings: NotifierSettings
    service: InferenceService  # the API's own receipt and result logic
    sqs: Any
    secret: Callable[[], str]
    clock: Callable[[], float] = time.time
    resolver: Resolver | None = None
    rand: Callable[[], float] = random.random
    send: Callable[..., delivery.Outcome] = delivery.post
    policy: CallbackPolicy = field(init=False)

    def __post_init__(self) -> None:
        self.policy = CallbackPolicy(self.settings.allowed_hosts, self.settings.allow_loopback_http)

    # ------------------------------------------------------------------ one record
    def handle(self, record: Mapping[str, Any]) -> str:
        """Process one SQS record; returns what happened. Raises RetryLater to keep it queued."""
        notification = parse_notification(record.get("body", ""))
        if notification is None or not logic.INFERENCE_ID.fullmatch(notification.inference_id):
            return "ignored: not an inference result of this API"
        now = self.clock()
        sent = int(record.get("attributes", {}).get("SentTimestamp", int(now * 1000))) / 1000
        deadline = Deadline(lambda: float("inf"))
        receipt = self.service.read_receipt(deadline, notification.inference_id)
        if receipt is None:
            if now - sent < RECEIPT_WAIT_SECONDS:
                # A short wait: the receipt is written within the submit's own request.
                wait = backoff_seconds(1, base=self.settings.retry_base_seconds, max_delay=60, rand=self.rand)
                self._hide(record, wait)
                raise RetryLater(f"no receipt for {notification.inference_id} yet")
            return "ignored: no receipt (not submitted through this API)"
        if not receipt.callbackUrl or receipt.caller is None:
            return "ignored: no callback requested"

        event_id = webhook_id(notification)
        state = self._state(notification.inference_id)
        # A duplicate SNS delivery of a delivered event is dropped. A Failed one is tried again:
        # it is an event an operator moved back from the dead-letter queue (or an SNS duplicate
        # of a refused one, which costs the receiver one more refusal).
        if state.webhookId == event_id and state.status == "Delivered":
            return f"ignored: {event_id} already delivered"
        attempts = (state.attempts if state.webhookId == event_id else 0) + 1

        outcome = self._attempt(receipt, notification, event_id, now)
        if outcome.delivered:
            self._save(notification.inference_id, CallbackState("Delivered", attempts, None, event_id, _iso(now)))
            return f"delivered {event_id} (attempt {attempts})"
        if not outcome.retryable:
            self._save(notification.inference_id, CallbackState("Failed", attempts, outcome.error, event_id, _iso(now)))
            return f"failed {event_id}: {outcome.error}"
        delay = backoff_seconds(
            attempts,
            base=self.settings.retry_base_seconds,
            max_delay=self.settings.retry_max_delay_seconds,
            rand=self.rand,
        )
        if now + delay - sent > self.settings.retry_window_seconds:
            reason = (
                f"gave up after {attempts} attempts over {(now - sent) / 3600:.1f} h "
                f"(retry window {self.settings.retry_window_seconds / 3600:g} h); last error: {outcome.error}"
            )
            self._dead_letter(record, notification, reason)
            self._save(notification.inference_id, CallbackState("Failed", attempts, reason, event_id, _iso(now)))
            return f"dead-lettered {event_id}"
        self._save(notification.inference_id, CallbackState("Retrying", attempts, outcome.error, event_id, _iso(now)))
        self._hide(record, delay)
        raise RetryLater(f"{event_id} attempt {attempts} failed ({outcome.error}); next in {delay} s")

    # ------------------------------------------------------------------ steps
    def event_body(self, receipt: logic.Receipt, notification: Notification, now: float) -> bytes:
        """The event as sent: {type, timestamp, inferenceId, status, data}; data is what
        GET /invocations/{id} answers. A result that would push the body past the payload cap
        goes as a presigned URL instead (and a failure body is cut to half the cap)."""
        url = f"{self.settings.status_base_url.rstrip('/')}/invocations/{receipt.inferenceId}"
        deadline = Deadline(lambda: float("inf"))
        document = self.service.document(receipt, url, deadline).body
        body = _event_bytes(notification, document, now)
        cap = self.settings.max_payload_bytes
        if len(body) > cap:
            document = self.service.document(receipt, url, deadline, inline_limit=0).body
            if document.get("failureReason") and len(_event_bytes(notification, document, now)) > cap:
                reason = document["failureReason"][: cap // 2]
                document = {**document, "failureReason": reason, "failureTruncated": True}
            body = _event_bytes(notification, document, now)
        return body

    def _attempt(
        self, receipt: logic.Receipt, notification: Notification, event_id: str, now: float
    ) -> delivery.Outcome:
        try:
            target = parse_target(receipt.callbackUrl or "", self.policy)
            address = resolve_public(target, self.policy, self.resolver)
        except UnsafeDestination as error:
            return delivery.Outcome(400, f"callback URL refused at delivery: {error}")  # final: no retry
        except OSError as error:
            return delivery.Outcome(None, f"cannot resolve the callback host: {error}"[:300])
        try:
            body = self.event_body(receipt, notification, now)
        except Exception as error:  # noqa: BLE001 - S3 trouble: retried like a receiver outage
            return delivery.Outcome(None, f"could not read the result: {type(error).__name__}")
        if json.loads(body)["data"].get("status") == "InProgress":
            return delivery.Outcome(None, "the result object is not readable yet")
        headers = signed_headers(self.secret(), event_id, int(now), body)
        return self.send(
            target,
            address,
            headers,
            body,
            connect_timeout=self.settings.connect_timeout_seconds,
            read_timeout=self.settings.read_timeout_seconds,
        )

    def _state(self, inference_id: str) -> CallbackState:
        return self.service.read_callback_state(Deadline(lambda: float("inf")), inference_id)

    def _save(self, inference_id: str, state: CallbackState) -> None:
        try:
            self.service.s3.put_object(
                Bucket=self.service.settings.input_bucket,
                Key=state_key(inference_id),
                Body=state.to_json(),
                ContentType="application/json",
            )
        except (ClientError, BotoCoreError) as error:  # the delivery itself already happened
            log.warning("could not record callback state of %s: %s", inference_id, error)

    def _hide(self, record: Mapping[str, Any], seconds: int) -> None:
        self.sqs.change_message_visibility(
            QueueUrl=self.settings.queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=seconds
        )

    def _dead_letter(self, record: Mapping[str, Any], notification: Notification, reason: str) -> None:
        self.sqs.send_message(
            QueueUrl=self.settings.dead_letter_queue_url,
            MessageBody=record["body"],
            MessageAttributes={
                "inferenceId": {"DataType": "String", "StringValue": notification.inference_id},
                "reason": {"DataType": "String", "StringValue": reason[:1000]},
            },
        )


def _event_bytes(notification: Notification, document: Mapping[str, Any], now: float) -> bytes:
    event = {
        "type": EVENT_TYPES[notification.status],
        "timestamp": notification.event_time or _iso(now),
        # Also at the top, so a receiver can route the event without reading `data`.
        "inferenceId": notification.inference_id,
        "status": notification.status,
        "data": document,
    }
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
