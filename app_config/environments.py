"""The environments this app deploys. Edit here; `make synth` validates every one.

Values are plain data so that a review of a pull request shows exactly what
changes per environment; `EnvironmentConfig` turns them into checked settings.
"""

from __future__ import annotations

from typing import Any

# A summarization model: served through the seq2seq `generate` path of the container.
_DEFAULT_MODEL: dict[str, Any] = {
    "kind": "hub",
    "model_id": "sshleifer/distilbart-cnn-12-6",
    "task": "summarization",
    # The commit transformers itself pins for its summarization default ("a4f8f3e"), in
    # full: https://huggingface.co/sshleifer/distilbart-cnn-12-6/tree/a4f8f3ea906ed274767e9906dbaede7531d660ff
    "revision": "a4f8f3ea906ed274767e9906dbaede7531d660ff",
}

# Who is told when an alarm fires (e-mail subscription to the alarm topic; the address
# must confirm the subscription once). Replace with your team's on-call address.
_ALARM_EMAIL = "inference-oncall@example.com"

ENVIRONMENTS: dict[str, dict[str, Any]] = {
    "dev": {
        "name": "dev",
        "instance_type": "ml.g4dn.xlarge",
        # Batches of up to 8 inputs on the T4; SageMaker sends at most 2 x 8 = 16 requests at once
        # (max_concurrent_invocations_per_instance, derived: app_config/models.py).
        "max_batch_size": 8,
        "model": _DEFAULT_MODEL,
        "scaling": {
            "min_capacity": 0,
            "max_capacity": 1,
            "metric": "ApproximateAgeOfOldestRequest",
            "target_value": 300,
            "idle_minutes_before_scale_in": 15,
        },
        "storage": {"input_expiry_days": 3, "output_expiry_days": 7, "failure_expiry_days": 7},
        "operations": {"max_request_age_seconds": 1800, "expected_cold_start_minutes": 15},
        "deployment": {"strategy": "all_at_once", "termination_wait_seconds": 300},
        "log_retention_days": 14,
        "retain_data": False,
        "alarm_email": _ALARM_EMAIL,
    },
    "prod": {
        "name": "prod",
        "instance_type": "ml.g5.xlarge",
        # The A10G has room for batches of 16; the concurrency cap follows (2 x 16 = 32).
        "max_batch_size": 16,
        "model": _DEFAULT_MODEL,
        "scaling": {
            "min_capacity": 0,
            "max_capacity": 4,
            "metric": "ApproximateAgeOfOldestRequest",
            "target_value": 180,
            "idle_minutes_before_scale_in": 30,
        },
        "storage": {"input_expiry_days": 7, "output_expiry_days": 30, "failure_expiry_days": 90},
        "operations": {"max_request_age_seconds": 600, "expected_cold_start_minutes": 15, "failures_per_5_minutes": 3},
        "deployment": {
            "strategy": "canary",
            "step_percent": 25,
            "wait_interval_seconds": 600,
            "termination_wait_seconds": 900,
        },
        "log_retention_days": 365,
        "retain_data": True,
        "alarm_email": _ALARM_EMAIL,
    },
    # Examples of the other hosting modes (app_config/hosting.py), synthesized and checked by
    # every `make synth` and test run. Switching an environment's mode is its "hosting" line.
    "example-realtime": {
        "name": "example-realtime",
        "hosting": {
            "mode": "realtime",
            "min_capacity": 1,
            "max_capacity": 2,
            # Measured with devtools/bench.py against one ml.g5.xlarge (replace with your model's figure).
            "peak_requests_per_second_per_instance": 4,
            "max_model_latency_ms": 20000,
        },
        "instance_type": "ml.g5.xlarge",
        "model": _DEFAULT_MODEL,
        "deployment": {
            "strategy": "canary",
            "step_percent": 50,
            "wait_interval_seconds": 300,
            "termination_wait_seconds": 300,
        },
        "log_retention_days": 30,
        "alarm_email": _ALARM_EMAIL,
    },
    # A multi-model endpoint: one tarball per model under the prefix (TargetModel names it);
    # CPU instance types only for this container (GPU multi-model endpoints are Triton's).
    "example-multimodel": {
        "name": "example-multimodel",
        "hosting": {
            "mode": "multimodel",
            "min_capacity": 1,
            "max_capacity": 2,
            "peak_requests_per_second_per_instance": 2,
            "model_cache_setting": "Enabled",
        },
        "instance_type": "ml.m5.xlarge",
        # Replace with your models' prefix (the execution role may read under it and nothing else).
        "model": {"kind": "s3_prefix", "uri": "s3://example-inference-models/summarizers/"},
        "deployment": {"strategy": "all_at_once", "wait_interval_seconds": 0, "termination_wait_seconds": 300},
        "log_retention_days": 30,
        "alarm_email": _ALARM_EMAIL,
    },
    "example-serverless": {
        "name": "example-serverless",
        # CPU only, nothing billed while idle; one warm execution kept, scaled up to 4 on utilization.
        "hosting": {
            "mode": "serverless",
            "memory_size_mb": 4096,
            "max_concurrency": 10,
            "provisioned_concurrency": 1,
            "max_provisioned_concurrency": 4,
        },
        "model": _DEFAULT_MODEL,
        "deployment": {"strategy": "all_at_once", "wait_interval_seconds": 0, "termination_wait_seconds": 300},
        "log_retention_days": 14,
        "alarm_email": _ALARM_EMAIL,
    },
}
