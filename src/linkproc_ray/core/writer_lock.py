"""One writer per org file, enforced by the kernel rather than assumed.

Ray keeps one instance of each named actor, but a node cut off from the GCS
can keep a zombie actor writing while its replacement starts elsewhere on the
same shared volume (k8s/storage.yaml). An exclusive POSIX lock on a file
beside the database makes the second opener fail loudly instead of
interleaving two writers in one log. POSIX (``fcntl``) locks are what NFSv4
and CephFS carry between nodes, and the kernel drops them when the holder
dies, so a crashed actor never leaves a stale lock behind. They are per
process: two stores in one process do not exclude each other, which is right
for the actors (one process each) and for tests that reopen a file.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from pathlib import Path

from linkproc_ray.errors import StoreLocked


class WriterLock:
    """An exclusive lock on ``<database>.lock``, held from open to close.

    :param wait: seconds to keep trying while another process holds it (an
        actor restarting beside its dying predecessor).
    """

    def __init__(self, database: Path, *, wait: float = 5.0) -> None:
        self.path = Path(f"{database}.lock")
        self.wait = wait
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    async def acquire(self) -> None:
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StoreLocked(
                        f"{self.path.name[: -len('.lock')]} is open for writing in another process "
                        f"(its lock file {self.path.name} is held); only one actor may write an org's file"
                    ) from None
                await asyncio.sleep(0.1)
                continue
            # The holder's pid, for an operator reading the file; the lock itself is the truth.
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            return

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.close(fd)  # closing drops the lock
