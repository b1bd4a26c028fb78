"""A moto server with the stack's buckets and topics, and queues that observe the topics.

moto's ``ThreadedMotoServer`` runs in this process on 127.0.0.1; every boto3 client
of the pipeline (the Lambda, the runtime stand-in, tests) reaches it through
``endpoint_url``. Physical names are fixed here (unlike the stack, which lets
CloudFormation generate them): the local pipeline is one per machine and
readable names make `aws s3 ls --endpoint-url ...` easy to follow.
"""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass
from typing import Any, Literal

import boto3
from botocore.config import Config

from api_handler import contract

# The API's storage layout (api_handler/contract.py), re-exported for the stand-ins.
INPUT_PREFIX = contract.INPUT_PREFIX
UPLOAD_PREFIX = contract.UPLOAD_PREFIX
OUTPUT_PREFIX = contract.OUTPUT_PREFIX
FAILURE_PREFIX = contract.FAILURE_PREFIX

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
# Credentials moto accepts; set explicitly so no real credential is ever read or sent.
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
FAKE_CREDENTIALS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}

__all__ = [
    "ACCOUNT_ID",
    "FAILURE_PREFIX",
    "FAKE_CREDENTIALS_ENV",
    "INPUT_PREFIX",
    "OUTPUT_PREFIX",
    "REGION",
    "UPLOAD_PREFIX",
    "LocalResources",
    "MotoService",
    "aws_client",
    "create_resources",
    "drain_notifications",
]


# The services the local pipeline stands in for (moto) or calls (the runtime stand-ins).
LocalService = Literal["kms", "s3", "sagemaker", "sagemaker-runtime", "secretsmanager", "sns", "sqs"]


def aws_client(service: LocalService, endpoint_url: str, *, max_pool_connections: int = 50) -> Any:
    """A boto3 client bound to the local moto server with fake credentials.

    A larger connection pool than boto3's default 10: the runtime's workers and
    a test's 200 concurrent submissions share clients across threads.
    """
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        config=Config(max_pool_connections=max_pool_connections, retries={"mode": "standard", "max_attempts": 5}),
        aws_access_key_id=FAKE_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=FAKE_CREDENTIALS["aws_secret_access_key"],
    )


@dataclass(frozen=True)
class LocalResources(contract.ResultPaths):
    """What the stack would output: bucket names, topic ARNs, plus the observer queues.

    The output and failure bucket fields, and the S3OutputPath / S3FailurePath built from them,
    are the contract's ResultPaths: the same as the stack's endpoint configuration.
    """

    input_bucket: str
    success_topic_arn: str
    error_topic_arn: str
    success_queue_url: str
    error_queue_url: str


class MotoService:
    """moto's threaded server on 127.0.0.1 (port 0 picks a free one)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self.host, self.port = host, port
        self.endpoint_url: str | None = None

    def start(self) -> str:
        # werkzeug logs every S3/SNS call at INFO: far too much for a terminal.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if self.port:
            # ThreadedMotoServer binds in its thread and waits forever if that fails:
            # find out here, with an error that names the port.
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((self.host, self.port))
                except OSError as error:
                    raise OSError(f"cannot listen on {self.host}:{self.port} for moto: {error}") from None
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self.endpoint_url

    def stop(self) -> None:
        if self.endpoint_url is not None:
            self._server.stop()
            self.endpoint_url = None


def create_resources(endpoint_url: str, *, prefix: str = "local-inference") -> LocalResources:
    """Create the stack's buckets (SSE-KMS, like the stack), topics and observer queues."""
    s3 = aws_client("s3", endpoint_url)
    sns = aws_client("sns", endpoint_url)
    sqs = aws_client("sqs", endpoint_url)
    kms = aws_client("kms", endpoint_url)

    key_id = kms.create_key(Description="local stand-in for the storage key")["KeyMetadata"]["KeyId"]
    buckets = {kind: f"{prefix}-{kind}" for kind in ("input", "output", "failure")}
    for name in buckets.values():
        s3.create_bucket(Bucket=name)  # us-east-1: no LocationConstraint
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id}}]
            },
        )

    topics: dict[str, str] = {}
    queues: dict[str, str] = {}
    for kind in ("success", "error"):
        topic_arn = sns.create_topic(Name=f"{prefix}-{kind}")["TopicArn"]
        queue_url = sqs.create_queue(QueueName=f"{prefix}-{kind}-observer")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        # Raw delivery: the queue holds SageMaker's notification JSON itself,
        # as a subscriber with RawMessageDelivery would see it.
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        topics[kind], queues[kind] = topic_arn, queue_url

    return LocalResources(
        input_bucket=buckets["input"],
        output_bucket=buckets["output"],
        failure_bucket=buckets["failure"],
        success_topic_arn=topics["success"],
        error_topic_arn=topics["error"],
        success_queue_url=queues["success"],
        error_queue_url=queues["error"],
    )


def drain_notifications(endpoint_url: str, queue_url: str, *, wait_seconds: int = 0) -> list[dict[str, Any]]:
    """Every notification currently in an observer queue (deleted once read)."""
    sqs = aws_client("sqs", endpoint_url)
    found: list[dict[str, Any]] = []
    # Bounded: at most 1000 batches of 10, i.e. far more than any test sends.
    for _ in range(1000):
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds)
        messages = batch.get("Messages", [])
        if not messages:
            break
        for message in messages:
            found.append(json.loads(message["Body"]))
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        wait_seconds = 0
    return found
