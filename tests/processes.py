"""Running a command to its end and waiting for what a command started, as the tests do both.

Shared by the test packages (docs, container, e2e) so that each test states only what it
runs and what it expects, not how output is captured or how long a poll sleeps.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_captured(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    check: bool = False,
    cwd: Path = REPO_ROOT,
) -> subprocess.CompletedProcess[str]:
    """``argv`` run to its end from the repository root (where the documents' commands are run),
    its stdout and stderr kept as text.

    ``check`` is off by default: most tests assert the exit status themselves, with the output
    in the assertion message, which a CalledProcessError would not show.
    """
    return subprocess.run(
        list(argv),
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def wait_for(predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.05) -> None:
    """Call ``predicate`` every ``interval`` seconds until it is true; after ``timeout`` seconds,
    fail naming ``what`` was awaited. An exception from ``predicate`` (a process that died) ends
    the wait at once with that exception."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
