"""What a new user's first commands do: `make synth` installs only what synthesis needs, and
`make diff` / `make deploy` without credentials or region stop at once with one clear message."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.processes import run_captured

from .commands import REPO_ROOT


def _dry_run(target: str) -> str:
    """Every command `make TARGET` would run from a fresh clone (-B: as if nothing were installed)."""
    return run_captured(["make", "-n", "-B", "--no-print-directory", target], timeout=60, check=True).stdout


def test_make_synth_installs_only_the_synthesis_requirements() -> None:
    commands = _dry_run("synth")
    assert "pip install --quiet --disable-pip-version-check -r requirements.txt" in commands
    assert "requirements-dev.txt" not in commands and "container/requirements.txt" not in commands
    assert "npm ci" in commands and "cdk synth" in commands
    synth_requirements = (REPO_ROOT / "requirements.txt").read_text()
    assert "torch" not in synth_requirements and "-r " not in synth_requirements


def test_make_test_installs_the_rest() -> None:
    commands = _dry_run("test")
    assert "-r requirements-dev.txt" in commands
    dev = (REPO_ROOT / "requirements-dev.txt").read_text()
    assert "-r requirements.txt" in dev  # the tests synthesize too


def _no_aws_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # No profile files, no instance metadata: exactly a new user's laptop.
    env.update(
        AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true", **extra
    )
    return env


@pytest.mark.parametrize("target", ["diff", "deploy"])
def test_without_credentials_diff_and_deploy_say_what_to_set(target: str) -> None:
    completed = run_captured(
        ["make", "--no-print-directory", "-o", "install-synth", target, "ENV=dev"],
        timeout=60,
        env=_no_aws_environment(),
    )
    assert completed.returncode != 0
    assert completed.stderr.count("no AWS credentials found") == 1, completed.stderr
    assert "AWS_PROFILE" in completed.stderr and "AWS_REGION" in completed.stderr
    assert "cdk" not in completed.stdout  # stopped before the CLI ran


def _preflight(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The check `make diff` / `make deploy` run first."""
    return run_captured([sys.executable, "-m", "devtools.aws_preflight"], timeout=60, env=env)


def test_the_preflight_passes_with_credentials_and_a_region() -> None:
    env = _no_aws_environment(
        AWS_ACCESS_KEY_ID="AKIAEXAMPLEEXAMPLE00", AWS_SECRET_ACCESS_KEY="x" * 40, AWS_REGION="eu-west-1"
    )
    completed = _preflight(env)
    assert completed.returncode == 0, completed.stderr
    env.pop("AWS_REGION")
    completed = _preflight(env)
    assert completed.returncode == 1 and "no AWS region" in completed.stderr
    assert "credentials" not in completed.stderr
