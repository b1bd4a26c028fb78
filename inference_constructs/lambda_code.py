"""The Lambda asset of the API's functions: the `api_handler` package under the asset root.

Lambda puts the asset root on sys.path, so with `api_handler/` inside it the handlers
(api_handler/contract.py: API_HANDLER, NOTIFIER_HANDLER) are the same modules the tests and the
local stack import. Only first-party code goes in (the
Powertools layer supplies the libraries), so the asset stays a few dozen kilobytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from functools import cache
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "api_handler"
# Bytecode differs per Python version and machine: left out so the asset hash is stable.
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def _source_digest(package_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@cache
def stage_package(build_dir: Path = REPO_ROOT / ".build" / "lambda") -> Path:
    """Copy `api_handler/` into a directory of its own and return that directory (the asset root).

    Named after the content hash: an unchanged package reuses the copy, and a changed one never
    overwrites a copy another synth may be reading (the copy is renamed into place whole).
    """
    package_dir = REPO_ROOT / PACKAGE
    root = build_dir / _source_digest(package_dir)
    if not root.is_dir():
        partial = build_dir / f"{root.name}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(package_dir, partial / PACKAGE, ignore=_IGNORED)
        try:
            partial.replace(root)
        except OSError:  # another synth put the same content there first
            shutil.rmtree(partial, ignore_errors=True)
    return root


def handler_code() -> lambda_.Code:
    """The asset every function of the API uses (one upload, one hash)."""
    return lambda_.Code.from_asset(str(stage_package()))
