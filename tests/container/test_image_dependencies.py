"""The image's Python dependency set is one resolved, pinned set, and the tests run it.

container/requirements.txt + container/constraints.txt are resolved again by
pip, from PyPI, for the image's Python version and platform (read from the
Dockerfile's BASE_IMAGE): every package pip would install must be pinned, at
that version, and nothing else may be pinned. The dev venv the tests run in
must hold the same versions. (PyPI is reachable in CI; without it the
resolution test is skipped with the reason, the offline checks still run.)
"""

from __future__ import annotations

import re
import ssl
import sys
import urllib.request
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.version import Version

from devtools import container_constraints as cc

from .conftest import ROOT


def pypi_unreachable() -> str | None:
    cafile = cc.SYSTEM_CA if Path(cc.SYSTEM_CA).exists() else None
    try:
        urllib.request.urlopen(
            "https://pypi.org/simple/pip/", timeout=15, context=ssl.create_default_context(cafile=cafile)
        ).close()
    except OSError as exc:
        return f"PyPI unreachable ({exc})"
    return None


def is_cuda_build_only(name: str) -> bool:
    """Packages that only torch's CUDA build pulls in: absent from the CPU dev venv by design."""
    return name.startswith(("nvidia-", "cuda-")) or name == "triton"


def test_the_pins_are_what_pip_resolves_for_the_image() -> None:
    reason = pypi_unreachable()
    if reason:
        pytest.skip(reason)
    target = cc.image_target()
    resolved = cc.resolve(target, cc.REQUIREMENTS, cc.CONSTRAINTS)
    problems = cc.differences(resolved, cc.read_pins(cc.REQUIREMENTS), cc.read_pins(cc.CONSTRAINTS))
    assert problems == [], "\n".join(problems) + "\nregenerate: .venv/bin/python -m devtools.container_constraints"
    # The image gets torch's CUDA build, with its CUDA runtime inside the pinned set.
    assert resolved["torch"] == cc.read_pins(cc.REQUIREMENTS)["torch"]
    assert cc.CUDA_RUNTIME in resolved


def test_the_dev_venv_runs_the_images_versions() -> None:
    pins = {**cc.read_pins(cc.CONSTRAINTS), **cc.read_pins(cc.REQUIREMENTS)}
    wrong, missing = [], []
    for name, pinned in sorted(pins.items()):
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            missing.append(name)
            continue
        # The venv's torch is the CPU build of the pinned version: "2.13.0+cpu" is "2.13.0".
        if Version(installed.public) != Version(pinned):
            wrong.append(f"{name}: image {pinned}, tests {installed}")
    assert wrong == [], "the tests run other versions than the image ships (make install): " + "; ".join(wrong)
    assert [name for name in missing if not is_cuda_build_only(name)] == []


def test_the_tests_run_the_images_python() -> None:
    assert cc.image_target().python == f"{sys.version_info.major}.{sys.version_info.minor}"


def test_the_image_target_comes_from_the_dockerfile(tmp_path: Path) -> None:
    target = cc.image_target()
    assert (target.python, target.glibc, target.machine) == ("3.11", (2, 36), "x86_64")
    tags = target.platforms()
    # Every glibc from the image's down to PEP 600's oldest, plus the legacy aliases wheels still carry.
    assert tags[0] == "manylinux_2_36_x86_64" and tags[-1] == "manylinux1_x86_64"
    assert {"manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"} <= set(tags)
    assert "manylinux_2_37_x86_64" not in tags
    # The release is read, not assumed: a trixie base means a newer glibc.
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("ARG BASE_IMAGE=python:3.12.9-slim-trixie\nFROM ${BASE_IMAGE}\n")
    assert cc.image_target(dockerfile) == cc.ImageTarget(python="3.12", glibc=(2, 41))
    dockerfile.write_text("ARG BASE_IMAGE=pytorch/pytorch:2.9.0-cuda12.8-cudnn9-runtime\n")
    with pytest.raises(SystemExit, match=re.escape("python:X.Y.Z-slim")):
        cc.image_target(dockerfile)


def test_make_test_image_builds_on_the_same_debian_release() -> None:
    script = (ROOT / "devtools" / "test_image.sh").read_text()
    release = re.search(r"-slim-([a-z]+)", cc.base_image()).group(1)
    assert re.search(rf"debootstrap .*\b{release}\b", script), f"test_image.sh does not debootstrap {release}"


def test_cuda_version_is_the_pinned_runtime() -> None:
    major, minor = cc.cuda_version()
    # cuDNN's wheel names the CUDA major it was built for: the two pins must agree.
    (cudnn,) = [name for name in cc.read_pins(cc.CONSTRAINTS) if name.startswith("nvidia-cudnn-cu")]
    assert cudnn == f"nvidia-cudnn-cu{major}" and minor >= 0


@pytest.mark.parametrize(
    ("resolved", "expected"),
    [
        ({"a": "1.0", "b": "2.0", "torch": "2.13.0"}, []),
        (
            {"a": "1.0", "b": "2.0", "torch": "2.13.0", "c": "3.0"},
            ["c==3.0 is installed in the image but pinned nowhere"],
        ),
        ({"a": "1.1", "b": "2.0", "torch": "2.13.0"}, ["a: pinned 1.0, resolved 1.1"]),
        ({"a": "1.0", "torch": "2.13.0"}, ["b==2.0 is pinned but not part of the image's set"]),
    ],
)
def test_differences_name_each_disagreement(resolved: dict[str, str], expected: list[str]) -> None:
    assert cc.differences(resolved, {"torch": "2.13.0"}, {"a": "1.0", "b": "2.0"}) == expected


def test_constraints_file_is_rendered_from_a_resolution() -> None:
    text = cc.render({"torch": "2.13.0", "nvidia-cuda-runtime": "13.0.96", "filelock": "4.3.1"}, {"torch": "2.13.0"})
    pins = [line for line in text.splitlines() if not line.startswith("#")]
    assert pins == ["filelock==4.3.1", "nvidia-cuda-runtime==13.0.96"]
