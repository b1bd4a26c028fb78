"""checkov's verdicts on the synthesized templates, exactly as `make checkov` runs it.

Every check the project fails on purpose is a CheckovSkip in stacks/compliance.py,
with its reason; synth writes it into the resource's Metadata, where checkov reads it
(`checkov: {skip: [{id, comment}]}`). So:

- `checkov -d cdk.out` must report 0 failed checks: a new failure fails here;
- run on the same templates with that Metadata stripped, checkov must fail exactly the
  skipped checks: a skip that no longer hides a real failure (stale) fails here too.

checkov lives in its own venv (.venv-checkov, made by `make install`): it pins
boto3==1.35.49, which conflicts with the project's boto3 pin.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

import app as cdk_app
from stacks.compliance import CALLBACK_CHECKOV_SKIPS, CHECKOV_SKIPS
from tests.infra.conftest import ROOT

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"

# (template file, "Type.LogicalId", check id): how checkov names one verdict.
Verdict = tuple[str, str, str]


def run_checkov(directory: Path) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: `make install` builds checkov's own venv (requirements-checkov.txt)")
    # The command of `make checkov` and docs/operations.md; --skip-download keeps it offline.
    result = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "--framework", "cloudformation", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    # Exit 1 means failed checks; anything else but 0 is checkov itself failing.
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    # One framework gives one report object; checkov returns a list only for several.
    [report] = report if isinstance(report, list) else [report]
    assert report["check_type"] == "cloudformation"
    assert report["summary"]["parsing_errors"] == 0, report["results"].get("parsing_errors")
    return report


def verdicts(report: dict[str, Any], kind: str) -> set[Verdict]:
    return {(Path(c["file_path"]).name, c["resource"], c["check_id"]) for c in report["results"][kind]}


def declared_skips(templates: list[Path]) -> dict[Verdict, str]:
    """The skips synth wrote into the templates, with their comments."""
    skips = {}
    for path in templates:
        for logical_id, resource in json.loads(path.read_text())["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                skips[(path.name, f"{resource['Type']}.{logical_id}", skip["id"])] = skip["comment"]
    return skips


@pytest.fixture(scope="module")
def templates(synthesized, ci_outdir: Path) -> list[Path]:
    found = sorted([*synthesized.outdir.glob("*.template.json"), *ci_outdir.glob("*.template.json")])
    assert {p.name for p in found} >= {
        "AsyncInference-dev.template.json",
        "AsyncInference-prod.template.json",
        f"{cdk_app.CI_IDENTITY_STACK_ID}.template.json",
    }
    return found


@pytest.mark.parametrize("which", ["service", "ci"])
def test_checkov_fails_no_check_and_skips_only_what_compliance_py_accepts(
    synthesized, ci_outdir: Path, templates: list[Path], which: str
) -> None:
    outdir = synthesized.outdir if which == "service" else ci_outdir
    report = run_checkov(outdir)
    assert report["summary"]["passed"] > 0
    failed = report["results"]["failed_checks"]
    assert failed == [], (
        "new checkov failures: fix them, or accept each in compliance.CHECKOV_SKIPS with its reason:\n"
        + "\n".join(f"{c['check_id']} {c['resource']} ({Path(c['file_path']).name}): {c['check_name']}" for c in failed)
    )
    expected = {k: v for k, v in declared_skips(templates).items() if (outdir / k[0]).exists()}
    skipped = {
        (Path(c["file_path"]).name, c["resource"], c["check_id"]): c["check_result"].get("suppress_comment")
        for c in report["results"]["skipped_checks"]
    }
    assert skipped == expected


def test_every_skip_hides_a_real_failure_and_nothing_else(templates: list[Path], tmp_path: Path) -> None:
    """Stripped of the skip Metadata, checkov must fail exactly the skipped checks."""
    for path in templates:
        template = json.loads(path.read_text())
        for resource in template["Resources"].values():
            resource.get("Metadata", {}).pop("checkov", None)
        (tmp_path / path.name).write_text(json.dumps(template))
    raw = run_checkov(tmp_path)
    assert raw["results"]["skipped_checks"] == []
    assert verdicts(raw, "failed_checks") == set(declared_skips(templates))


def test_every_accepted_check_is_used_somewhere(templates: list[Path]) -> None:
    """A CheckovSkip whose condition (`when`) holds in no environment is dead: remove it."""
    used = {check for (_, _, check) in declared_skips(templates)}
    assert {skip.check for skip in (*CHECKOV_SKIPS, *CALLBACK_CHECKOV_SKIPS)} == used


def test_the_checkov_venv_runs_the_pinned_version() -> None:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make install`")
    [pin] = re.findall(r"^checkov==(\S+)$", (ROOT / "requirements-checkov.txt").read_text(), flags=re.MULTILINE)
    version = subprocess.run([str(CHECKOV), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert version == pin
    # The conflict that is the reason for the separate venv: checkov's boto3 pin differs from ours.
    ours = re.findall(r"^boto3==(\S+)$", (ROOT / "requirements-dev.txt").read_text(), flags=re.MULTILINE)
    theirs = re.findall(r"^boto3==(\S+)$", (ROOT / "requirements-checkov.txt").read_text(), flags=re.MULTILINE)
    assert ours and theirs and ours != theirs
