"""The commands users type: the pinned CDK CLI reads our cloud assembly, bad env names fail clearly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app_config import environment_names
from tests.infra.conftest import ROOT

CDK = ROOT / "node_modules" / ".bin" / "cdk"


def _env() -> dict[str, str]:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_DISABLE_VERSION_CHECK": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.slow
@pytest.mark.skipif(not CDK.exists(), reason="the pinned CDK CLI is installed by `make install`")
def test_pinned_cli_synthesizes_every_environment(tmp_path: Path) -> None:
    # --app: use this interpreter, so the test does not depend on where the venv lives.
    result = subprocess.run(
        [str(CDK), "synth", "--quiet", "-c", "env=all", "--app", f"{sys.executable} app.py", "-o", str(tmp_path)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in environment_names():
        template = json.loads((tmp_path / f"AsyncInference-{name}.template.json").read_text())
        assert any(r["Type"] == "AWS::SageMaker::Endpoint" for r in template["Resources"].values())


def test_unknown_environment_fails_with_a_clear_message(tmp_path: Path) -> None:
    env = {**_env(), "CDK_CONTEXT_JSON": json.dumps({"env": "staging"}), "CDK_OUTDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    assert "unknown environment 'staging': choose one of dev, prod" in result.stderr
    assert not list(tmp_path.glob("*.template.json"))


def test_pinned_cli_version_can_read_this_cdk_lib() -> None:
    """npm's latest aws-cdk (3.x) rejects aws-cdk-lib 2.27x assemblies; the pin must stay on 2.1148+."""
    package = json.loads((ROOT / "package.json").read_text())
    major, minor, _ = (int(part) for part in package["devDependencies"]["aws-cdk"].split("."))
    assert (major, minor) >= (2, 1148) and major == 2
