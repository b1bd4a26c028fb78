"""A second local pipeline on the same moto server must start: every local resource is created
idempotently, the callback signing secret included (Secrets Manager's CreateSecret is not)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from local_stack.aws import aws_client, create_resources
from local_stack.callbacks import create_callback_resources


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_callback_resources_can_be_created_twice_and_the_secret_takes_the_new_value(moto_url: str) -> None:
    resources = create_resources(moto_url)
    first = create_callback_resources(moto_url, resources)
    second = create_callback_resources(moto_url, resources)

    assert second.secret_arn == first.secret_arn
    assert second.secret != first.secret
    stored = aws_client("secretsmanager", moto_url).get_secret_value(SecretId=second.secret_arn)["SecretString"]
    assert stored == second.secret, "the notifier must sign with the secret the banner prints"
