"""Pack a model directory into a byte-for-byte reproducible model.tar.gz.

A tarball made with `tar czf` embeds modification times, owners and the gzip
timestamp, so every synth would produce a new asset hash and `cdk diff` would
show a model change (and CloudFormation would replace the model and endpoint
config) although nothing changed. Here every entry is normalised.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path


def _entries(root: Path) -> list[Path]:
    """Every file and directory under root, in a stable order; symlinks refused."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink():
                raise ValueError(f"{path}: symbolic links are not packed; copy the file instead")
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _tar_bytes(root: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _entries(root):
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = path.stat().st_size
                info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
    return buffer.getvalue()


def pack_model_directory(source: Path, dest_dir: Path) -> Path:
    """Write source/ as a reproducible tar.gz into dest_dir and return its path.

    The file is named after its content hash, so identical input reuses the file
    and different input never overwrites an asset another synth may be reading.
    """
    source = Path(source)
    if not source.is_dir():
        raise ValueError(f"model directory {source} does not exist or is not a directory")
    if not any(source.iterdir()):
        raise ValueError(f"model directory {source} is empty")
    compressed = io.BytesIO()
    # mtime=0 and no file name: gzip headers otherwise carry both.
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=6) as gz:
        gz.write(_tar_bytes(source))
    data = compressed.getvalue()
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / f"model-{hashlib.sha256(data).hexdigest()[:16]}.tar.gz"
    if not target.exists():
        partial = target.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(target)
    return target
