"""Invalid configuration fails at synth with a message naming field, value and rule."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from app_config import ConfigError, environment_names, load_environment, parse_environment
from app_config.environments import ENVIRONMENTS


def _dev(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(ENVIRONMENTS["dev"])
    for dotted, value in changes.items():
        target = raw
        *parents, leaf = dotted.split("__")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return raw


def test_shipped_environments_are_valid() -> None:
    assert set(environment_names()) >= {"dev", "prod"}
    dev, prod = load_environment("dev"), load_environment("prod")
    assert (dev.instance_type, prod.instance_type) == ("ml.g4dn.xlarge", "ml.g5.xlarge")
    assert (dev.scaling.min_capacity, dev.scaling.max_capacity) == (0, 1)
    assert (prod.scaling.min_capacity, prod.scaling.max_capacity) == (0, 4)
    assert prod.retain_data and not dev.retain_data


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"instance_type": "g5.xlarge"}, ["instance_type", "'g5.xlarge'", "ml.<family>.<size>"]),
        ({"instance_type": "ml.g5"}, ["instance_type", "'ml.g5'", "ml.<family>.<size>"]),
        (
            {"scaling__min_capacity": 3, "scaling__max_capacity": 2},
            ["scaling", "min_capacity (3) must not exceed max_capacity (2)"],
        ),
        (
            {"max_concurrent_invocations_per_instance": 0},
            ["max_concurrent_invocations_per_instance", "= 0", "greater than or equal to 1"],
        ),
        (
            {"max_concurrent_invocations_per_instance": 1001},
            ["max_concurrent_invocations_per_instance", "= 1001", "less than or equal to 1000"],
        ),
        ({"invocation_timeout_seconds": 0}, ["invocation_timeout_seconds", "= 0", "greater than or equal to 1"]),
        ({"invocation_timeout_seconds": 3601}, ["invocation_timeout_seconds", "= 3601", "less than or equal to 3600"]),
        ({"request_ttl_seconds": 59}, ["request_ttl_seconds", "= 59", "greater than or equal to 60"]),
        ({"request_ttl_seconds": 21601}, ["request_ttl_seconds", "= 21601", "less than or equal to 21600"]),
        ({"scaling__metric": "Invocations"}, ["scaling.metric", "'Invocations'", "ApproximateAgeOfOldestRequest"]),
        (
            {"instance_type": "ml.g5.xlarge", "encrypt_storage_volume": True},
            ["NVMe", "'ml.g5.xlarge'", "encrypt_storage_volume"],
        ),
        (
            {"model": {"kind": "s3", "uri": "https://example.com/model.tar.gz"}},
            ["model.s3.uri", "s3://bucket/key.tar.gz"],
        ),
        ({"model": {"kind": "hub", "model_id": "not a hub id"}}, ["model.hub.model_id", "'not a hub id'"]),
        ({"model": {"kind": "ftp", "path": "x"}}, ["model", "'ftp'"]),
        ({"log_retention_days": 10}, ["log_retention_days", "= 10", "not a CloudWatch Logs retention"]),
        ({"account": "12345"}, ["account", "'12345'", "12-digit"]),
        ({"instance_typo": "ml.g5.xlarge"}, ["instance_typo", "Extra inputs are not permitted"]),
    ],
)
def test_invalid_value_is_named(changes: dict[str, Any], expected: list[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_environment(_dev(**changes))
    message = str(raised.value)
    assert message.startswith("invalid configuration for environment 'dev'")
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_unknown_environment_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown environment 'staging': choose one of dev, prod"):
        load_environment("staging")


def test_storage_volume_encryption_allowed_without_nvme() -> None:
    config = parse_environment(_dev(instance_type="ml.m5.xlarge", allow_cpu_instance=True, encrypt_storage_volume=True))
    assert config.encrypt_storage_volume and not config.has_nvme_storage


def test_local_model_directory_must_exist(tmp_path) -> None:
    with pytest.raises(ConfigError, match=re.escape("model.local.path")):
        parse_environment(_dev(model={"kind": "local", "path": str(tmp_path / "missing")}))
