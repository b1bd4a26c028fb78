"""Read the workflow files once, as data (PyYAML reads `on:` as True: undo that)."""

from __future__ import annotations

import importlib.util
import re
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<comment>.*))?$")


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


@cache
def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    if True in document:  # YAML 1.1: the bare key `on` is a boolean
        document["on"] = document.pop(True)
    return document


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def uses(job: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [step for step in steps(job) if str(step.get("uses", "")).startswith(prefix)]


def runs(job: dict[str, Any]) -> str:
    return "\n".join(str(step["run"]) for step in steps(job) if "run" in step)


def diff_comment_module() -> ModuleType:
    path = ROOT / ".github" / "scripts" / "diff_comment.py"
    spec = importlib.util.spec_from_file_location("diff_comment", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["diff_comment"] = module
    spec.loader.exec_module(module)
    return module
