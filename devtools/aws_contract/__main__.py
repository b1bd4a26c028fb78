"""python -m devtools.aws_contract TEMPLATE... : print contract findings, exit 1 if any."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app_config.image_cuda import image_cuda_version
from devtools.aws_contract import check_template

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.aws_contract", description=__doc__)
    parser.add_argument("templates", nargs="+", type=Path, help="synthesized templates (cdk.out/*.template.json)")
    parser.add_argument(
        "--container-dir",
        type=Path,
        default=ROOT / "container",
        help="the image whose CUDA version GPU variants must support",
    )
    args = parser.parse_args(argv)
    cuda = image_cuda_version(args.container_dir)
    failed = False
    for path in args.templates:
        findings = check_template(json.loads(path.read_text()), image_cuda_version=cuda)
        for finding in findings:
            print(f"{path.name}: {finding}")
        failed |= bool(findings)
        if not findings:
            print(f"{path.name}: no contract findings")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
