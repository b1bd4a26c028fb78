"""The notifier Lambda behind a local stand-in for its SQS event source mapping.

``python -m local_stack.notifier --queue-url URL`` (the pipeline starts it) imports the real
handler (``api_handler.notifier.handler.handler``, the module Lambda imports from the API asset), long-polls the
callbacks queue on moto, hands each batch to the handler as the SQS event Lambda builds
(https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html: messageId, receiptHandle,
body, attributes, messageAttributes, md5OfBody, eventSource, eventSourceARN, awsRegion), and
deletes the records the handler did not report in `batchItemFailures`, which is what the
mapping does with ReportBatchItemFailures. A reported record stays hidden for the visibility
timeout the handler set (its retry delay) and comes back then.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from api_handler import contract
from local_stack.api_gateway import load_handler
from local_stack.aws import REGION

log = logging.getLogger("local_stack.notifier")
# What the stack's event source mapping uses (inference_constructs/callbacks.py).
BATCH_SIZE = 10


def sqs_event(messages: Sequence[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Lambda's SQS event for messages from ReceiveMessage (AttributeNames=All)."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": {},
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for message in messages
        ]
    }


@dataclass
class _Context:
    """The Lambda context attributes Powertools' logger reads."""

    function_name: str = "callback-notifier"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:callback-notifier"
    aws_request_id: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def poll_once(sqs: Any, queue_url: str, queue_arn: str, handler: Callable[..., Any], *, wait_seconds: int = 1) -> int:
    """One receive + invoke + delete round, as the event source mapping does; returns the
    number of records handed to the handler."""
    batch = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=BATCH_SIZE, WaitTimeSeconds=wait_seconds, AttributeNames=["All"]
    )
    messages = batch.get("Messages", [])
    if not messages:
        return 0
    try:
        result = handler(sqs_event(messages, queue_arn), _Context(aws_request_id=str(uuid.uuid4())))
        failed = {item["itemIdentifier"] for item in (result or {}).get("batchItemFailures", [])}
    except Exception:  # a failed invocation: Lambda retries the whole batch later
        log.exception("the notifier handler raised")
        return len(messages)
    done = [m for m in messages if m["MessageId"] not in failed]
    if done:
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
        )
    return len(messages)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the notifier Lambda on a local SQS queue.")
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--handler", default=contract.NOTIFIER_HANDLER)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOCAL_LOG_LEVEL", "INFO"),
        stream=sys.stderr,
        format="%(asctime)s notifier[%(process)d] %(message)s",
    )
    from local_stack.aws import aws_client

    handler = load_handler(args.handler)
    sqs = aws_client("sqs", os.environ[contract.NotifierEnv.SQS_ENDPOINT_URL])
    queue_arn = sqs.get_queue_attributes(QueueUrl=args.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready notifier", flush=True)
    while not stop.is_set():
        try:
            poll_once(sqs, args.queue_url, queue_arn, handler)
        except Exception:  # moto going away during shutdown, a transient error
            if stop.wait(1):
                break
            log.exception("polling the callbacks queue failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
