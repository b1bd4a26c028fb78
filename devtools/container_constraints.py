"""The image's Python dependency set: one resolved, pinned set, resolved for the image itself.

container/requirements.txt names what the server imports (exact pins, torch
included); container/constraints.txt pins everything below them. Both are
read by the image build (``pip install -r requirements.txt -c constraints.txt``)
and by the dev venv that ``make test`` runs in (requirements-dev.txt includes
both), so the tests run the versions the image ships.

The set is resolved by pip itself, for the image's interpreter and platform
rather than the machine running this: the Python version and the Debian
release (hence the glibc, hence the manylinux wheels that install) are read
from the Dockerfile's ``ARG BASE_IMAGE=python:X.Y.Z-slim-<release>`` line.
The CUDA build of torch that PyPI serves for that platform brings its CUDA
runtime as ``nvidia-*`` wheels, pinned here too; ``cuda_version()`` reads the
image's CUDA version from that pin.

    .venv/bin/python -m devtools.container_constraints > container/constraints.txt   # regenerate
    .venv/bin/python -m devtools.container_constraints --check                         # what the test does
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

CONTAINER = Path(__file__).resolve().parents[1] / "container"
REQUIREMENTS = CONTAINER / "requirements.txt"
CONSTRAINTS = CONTAINER / "constraints.txt"
DOCKERFILE = CONTAINER / "Dockerfile"

# glibc of each Debian release the official python images are built on
# (https://packages.debian.org/search?keywords=libc6): a manylinux_2_N wheel
# installs only where glibc >= 2.N.
DEBIAN_GLIBC = {"bullseye": (2, 31), "bookworm": (2, 36), "trixie": (2, 41)}
# PEP 600's oldest manylinux_2_N tag, and the legacy aliases (PEP 513/571/599).
_OLDEST_GLIBC_MINOR = 5
_LEGACY = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"
# The runtime wheel torch's CUDA build depends on; its version is the image's CUDA.
CUDA_RUNTIME = "nvidia-cuda-runtime"

HEADER = """\
# Every package below container/requirements.txt, pinned: the image's whole Python
# dependency set, resolved by pip for the image's Python and platform (torch's CUDA
# runtime included: the nvidia-* wheels). The dev venv installs the same pins
# (requirements-dev.txt), and tests/container/test_image_dependencies.py resolves
# this set again from PyPI. Regenerate after changing requirements.txt:
#   .venv/bin/python -m devtools.container_constraints > container/constraints.txt"""


@dataclass(frozen=True)
class ImageTarget:
    """What pip must resolve for: the image's interpreter and wheel platform."""

    python: str  # "3.11"
    glibc: tuple[int, int]
    machine: str = "x86_64"  # SageMaker's GPU hosts are x86_64 (the CDK asset builds linux/amd64)

    def platforms(self) -> list[str]:
        major, newest = self.glibc
        tags = []
        for minor in range(newest, _OLDEST_GLIBC_MINOR - 1, -1):
            tags.append(f"manylinux_{major}_{minor}_{self.machine}")
            if (major, minor) in _LEGACY:
                tags.append(f"{_LEGACY[major, minor]}_{self.machine}")
        return tags


def base_image(dockerfile: Path = DOCKERFILE) -> str:
    (line,) = [ln for ln in dockerfile.read_text().splitlines() if ln.startswith("ARG BASE_IMAGE=")]
    return line.split("=", 1)[1].strip()


def image_target(dockerfile: Path = DOCKERFILE) -> ImageTarget:
    image = base_image(dockerfile)
    match = re.fullmatch(
        r"(?:docker\.io/)?(?:library/)?python:(\d+)\.(\d+)(?:\.\d+)?-slim-([a-z]+)(@sha256:[0-9a-f]{64})?", image
    )
    if not match or match.group(3) not in DEBIAN_GLIBC:
        raise SystemExit(f"BASE_IMAGE {image!r}: expected python:X.Y.Z-slim-<{'|'.join(DEBIAN_GLIBC)}>")
    return ImageTarget(python=f"{match.group(1)}.{match.group(2)}", glibc=DEBIAN_GLIBC[match.group(3)])


def read_pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements or constraints file, by canonical name."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier  # exact pins only: test_dockerfile checks the form
        pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def resolve(target: ImageTarget, requirements: Path, constraints: Path | None = None) -> dict[str, str]:
    """Ask pip (from PyPI, wheels only, nothing installed) what it would install in the image."""
    if sys.platform != "linux" or platform.machine() != target.machine:
        # pip evaluates environment markers (platform_machine ...) for the running machine.
        raise SystemExit(f"resolve on a linux {target.machine} machine (markers are evaluated locally)")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--ignore-installed",
            "--report",
            str(report),
            "--only-binary=:all:",
            "--python-version",
            target.python,
            *[arg for tag in target.platforms() for arg in ("--platform", tag)],
            "-r",
            str(requirements),
        ]
        if constraints is not None:
            command += ["-c", str(constraints)]
        # --isolated: no pip.conf / PIP_* settings, so no local wheel directory or
        # extra index can stand in for PyPI (a CPU torch wheel on disk would).
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        # --isolated drops PIP_CERT too: keep the machine's CA bundle (a TLS proxy's CA lives there).
        cert = next(
            (
                c
                for c in (os.environ.get("PIP_CERT"), os.environ.get("REQUESTS_CA_BUNDLE"), SYSTEM_CA)
                if c and Path(c).exists()
            ),
            None,
        )
        isolated = ["--isolated", *(["--cert", cert] if cert else [])]
        done = subprocess.run(
            [command[0], command[1], command[2], *isolated, *command[3:]],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
            check=False,
        )
        if done.returncode != 0:
            raise ResolutionError(done.stderr.strip() or done.stdout.strip())
        installs = json.loads(report.read_text())["install"]
    return {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"] for item in installs}


class ResolutionError(RuntimeError):
    """pip could not resolve the set for the image (message: pip's own)."""


def differences(resolved: dict[str, str], requirements: dict[str, str], constraints: dict[str, str]) -> list[str]:
    """What makes requirements + constraints not exactly the resolved set; empty when they agree."""
    pinned = {**constraints, **requirements}
    problems = []
    for name, version in sorted(resolved.items()):
        if name not in pinned:
            problems.append(f"{name}=={version} is installed in the image but pinned nowhere")
        elif Version(pinned[name]) != Version(version):
            problems.append(f"{name}: pinned {pinned[name]}, resolved {version}")
    for name in sorted(set(constraints) - set(resolved)):
        problems.append(f"{name}=={constraints[name]} is pinned but not part of the image's set")
    for name in sorted(set(requirements) & set(constraints)):
        problems.append(f"{name} is pinned in both requirements.txt and constraints.txt")
    return problems


def cuda_version(constraints: Path = CONSTRAINTS) -> tuple[int, int]:
    """The image's CUDA (major, minor), from the pinned CUDA runtime wheel torch depends on."""
    pins = read_pins(constraints)
    if CUDA_RUNTIME not in pins:
        raise SystemExit(f"{constraints}: no {CUDA_RUNTIME} pin (is torch's CUDA build in the set?)")
    release = Version(pins[CUDA_RUNTIME]).release
    return release[0], release[1]


def render(resolved: dict[str, str], requirements: dict[str, str]) -> str:
    lines = [HEADER, *(f"{name}=={resolved[name]}" for name in sorted(resolved) if name not in requirements)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="resolve with constraints.txt and report differences")
    args = parser.parse_args(argv)
    target = image_target()
    requirements = read_pins(REQUIREMENTS)
    if args.check:
        problems = differences(resolve(target, REQUIREMENTS, CONSTRAINTS), requirements, read_pins(CONSTRAINTS))
        print(
            "\n".join(problems)
            or f"constraints.txt is the image's resolved set (python {target.python}, "
            f"glibc {target.glibc[0]}.{target.glibc[1]}, CUDA {'.'.join(map(str, cuda_version()))})"
        )
        return 1 if problems else 0
    sys.stdout.write(render(resolve(target, REQUIREMENTS), requirements))
    return 0


if __name__ == "__main__":
    sys.exit(main())
