"""Print container/constraints.txt: the server's transitive dependencies, pinned.

The image must install what `make test` tested. This walks the dev venv's
installed metadata from the top-level pins in container/requirements.txt and
prints every dependency below them (torch and its own dependencies excluded:
the base image provides torch).

    .venv/bin/python -m devtools.container_constraints > container/constraints.txt
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REQUIREMENTS = Path(__file__).resolve().parents[1] / "container" / "requirements.txt"
HEADER = """\
# Versions of the server's transitive dependencies, as resolved in the dev venv that
# `make test` runs the server in: the image installs exactly what was tested
# (pip install -r requirements.txt -c constraints.txt). Regenerate after a bump:
#   .venv/bin/python -m devtools.container_constraints > container/constraints.txt"""


def closure(top: list[str]) -> dict[str, str]:
    seen: dict[str, str] = {}
    stack = list(top)
    while stack:
        name = canonicalize_name(stack.pop())
        if name in seen or name == "torch":
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            raise SystemExit(f"{name} is not installed in this venv: run `make install` first") from None
        seen[name] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            # Base dependencies only (no extras), for this platform (the image is linux/amd64).
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                stack.append(requirement.name)
    return seen


def main() -> None:
    top = [
        Requirement(line.split("#", 1)[0]).name
        for line in REQUIREMENTS.read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    pinned = closure(top)
    tops = {canonicalize_name(n) for n in top}
    print(HEADER)
    for name in sorted(pinned):
        if name not in tops:
            print(f"{name}=={pinned[name]}")


if __name__ == "__main__":
    main()
