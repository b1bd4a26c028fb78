"""Resident memory of a server and the processes it started, from /proc (Linux).

The model server's front end runs the model in a child engine process: "the
server's memory" is the sum over the tree.
"""

from __future__ import annotations

from pathlib import Path


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (the server's front end runs the model in a child engine)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its closing parenthesis.
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident memory of the server's processes now (VmRSS), or the sum of their peaks (VmHWM)."""
    total = 0
    for member in process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue  # exited meanwhile
        total += next((int(line.split()[1]) * 1024 for line in lines if line.startswith(field + ":")), 0)
    assert total, f"no {field} for {pid}"
    return total
