"""A real, size-limited filesystem for full-disk tests: a tmpfs the test mounts itself (root only).

Without root the tests skip with the reason, except under ``CI=true``, where
CI runs as root and a missing mount is a failure, not a skip.
"""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true runs as root and must mount a small filesystem: {reason}")
    pytest.skip(reason)


@contextmanager
def small_filesystem(size: str) -> Iterator[Path]:
    """A fresh tmpfs of ``size`` (``mount -o size=…``), unmounted afterwards."""
    if os.geteuid() != 0:
        _unavailable("mounting a size-limited tmpfs needs root")
    mount_point = Path(tempfile.mkdtemp(prefix="linkproc-small-fs-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        mount_point.rmdir()
        _unavailable(f"mount -t tmpfs failed: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        mount_point.rmdir()


def fill(path: Path) -> Path:
    """Write ``path`` until the filesystem has no byte left; returns it (delete it to free the space)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (1 << 20, 4096, 1):
            chunk = b"\0" * size
            try:
                while os.write(fd, chunk):
                    pass
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return path
