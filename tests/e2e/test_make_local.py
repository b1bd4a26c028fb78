"""`make local`'s program as a user runs it: starts, prints the API URL, serves, and Ctrl-C
(SIGINT) stops it and every process it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from inference_client import InferenceClient
from local_stack.container import REPO_ROOT
from local_stack.processes import free_port

pytestmark = pytest.mark.slow


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc; children run in their own sessions)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z":
                    parents[int(entry.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_local_pipeline_serves_and_ctrl_c_stops_everything(tiny_model_dir: Path, tmp_path: Path) -> None:
    api_port = free_port()
    env = {
        **os.environ,
        "LOCAL_API_PORT": str(api_port),
        "LOCAL_AWS_PORT": str(free_port()),
        "LOCAL_CONTAINER_PORT": str(free_port()),
        "MODEL_DIR": str(tiny_model_dir),
        "LOCAL_LOG_FILE": str(tmp_path / "children.log"),
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "local_stack"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "model ready" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(120), "".join(lines)
        output = "".join(lines)
        match = re.search(r"API \(no auth\)\s+(http://127\.0\.0\.1:(\d+))", output)
        assert match and int(match.group(2)) == api_port, output

        client = InferenceClient(match.group(1), sleep=time.sleep)
        accepted = client.submit(b"Hello from make local", "text/plain")
        document = client.wait(accepted["inferenceId"], initial_interval=0.1, max_interval=0.5, timeout=60)
        assert document["status"] == "Completed"
        assert "generated_text" in document["output"][0]  # one input: the toolkit's one-element list

        children = _descendants(process.pid)
        assert len(children) >= 3, children  # the model server and two Lambda environments
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0, "".join(lines)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if _alive(pid)], "processes outlived Ctrl-C"
        assert "local pipeline: stopped" in "".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
