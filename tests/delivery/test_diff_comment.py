"""The pull-request comment body built from `make diff` outputs."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.delivery.workflows import ROOT, diff_comment_module

dc = diff_comment_module()

CHANGED = """\x1b[1mStack AsyncInference-dev\x1b[22m
Resources
[~] AWS::SageMaker::EndpointConfig Inference/Config InferenceConfig replace
 └─ [~] InstanceType
     ├─ [-] ml.g4dn.xlarge
     └─ [+] ml.g5.xlarge

\u2728  Number of stacks with differences: 1
"""
UNCHANGED = "Stack AsyncInference-prod\nThere were no differences\n\n\u2728  Number of stacks with differences: 0\n"


def _diff(env: str, text: str | None, outcome: str = "success"):
    return dc.EnvironmentDiff(environment=env, outcome=outcome, text=text)


def test_body_starts_with_the_marker_and_summarises_each_environment() -> None:
    body = dc.render(
        [_diff("dev", CHANGED), _diff("prod", UNCHANGED)], sha="0123456789abcdef0123", run_url="https://x/run/1"
    )
    assert body.startswith(dc.MARKER + "\n")
    assert "- **dev**: changes" in body
    assert "- **prod**: no changes" in body
    assert "Commit `0123456789ab`" in body and "(https://x/run/1)" in body
    assert "[+] ml.g5.xlarge" in body
    assert "\x1b" not in body, "colour codes must be stripped"
    assert body.count("<details>") == 2 and body.count("</details>") == 2


def test_failed_or_missing_diffs_are_reported_not_hidden() -> None:
    body = dc.render([_diff("dev", "Error: could not assume role", "failure"), _diff("prod", None, "skipped")])
    assert "**dev**: :x: diff failure" in body
    assert "could not assume role" in body
    assert "**prod**: :x: diff skipped" in body
    assert "did not run" in body


def test_output_without_summary_line_is_flagged() -> None:
    assert "no summary line" in dc.render([_diff("dev", "something odd")])


def test_huge_diffs_are_truncated_below_githubs_limit() -> None:
    huge = "[+] " + "x" * 300_000
    body = dc.render([_diff("dev", huge), _diff("prod", huge)])
    assert len(body) <= dc.MAX_BODY < 65_536
    assert body.count("truncated") == 2
    assert body.count("</details>") == 2, "truncation must keep the Markdown structure"


def test_backticks_in_the_diff_cannot_close_the_code_block() -> None:
    body = dc.render([_diff("dev", "Description: ```not a fence```\nNumber of stacks with differences: 1")])
    fences = re.findall(r"^(`{3,})diff$", body, re.M)
    assert fences == ["````"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("dev=.build/diff-dev.txt:success", ("dev", Path(".build/diff-dev.txt"), "success")),
        ("prod=out/p.txt:failure", ("prod", Path("out/p.txt"), "failure")),
        ("dev=out/d.txt", ("dev", Path("out/d.txt"), "success")),
        ("dev=out/d.txt:", ("dev", Path("out/d.txt"), "skipped")),
    ],
)
def test_specs(spec: str, expected: tuple) -> None:
    assert dc.parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["dev", "=file", "dev=", "d ev=file"])
def test_bad_specs_are_rejected(spec: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="ENV=FILE"):
        dc.parse_spec(spec)


def test_cli_writes_a_multiline_step_output(tmp_path: Path) -> None:
    (tmp_path / "dev.txt").write_text(CHANGED)
    (tmp_path / "prod.txt").write_text(UNCHANGED)
    output = tmp_path / "github_output"
    output.write_text("earlier=1\n")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / ".github" / "scripts" / "diff_comment.py"),
            "--sha",
            "abc",
            "--github-output",
            str(output),
            f"dev={tmp_path / 'dev.txt'}:success",
            f"prod={tmp_path / 'prod.txt'}:success",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    text = output.read_text()
    assert text.startswith("earlier=1\n"), "appends, never truncates GITHUB_OUTPUT"
    match = re.search(r"^comment<<(EOF_[0-9a-f]{32})\n(.*)\n\1\n\Z", text, re.S | re.M)
    assert match, text[:300]
    assert match.group(2) == result.stdout.rstrip("\n")
    assert match.group(2).startswith(dc.MARKER)
