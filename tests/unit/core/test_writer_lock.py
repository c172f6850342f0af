"""One writer per org file: a second process that opens it for writing is refused, loudly.

The other process is real (a child Python), because POSIX locks only exclude
other processes; the shared volume of k8s/storage.yaml relies on exactly this.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from linkproc_ray.core.store import EventStore
from linkproc_ray.core.writer_lock import WriterLock
from linkproc_ray.errors import StoreLocked

HOLD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("held", flush=True)
sys.stdin.read()
"""

TRY = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    print("refused")
else:
    print("acquired")
"""


@contextmanager
def lock_held_elsewhere(lock_file: Path) -> Iterator[None]:
    """Another process holds ``lock_file`` until the block ends (then it exits, as a killed actor would)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock_file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    try:
        yield
    finally:
        holder.kill()
        holder.wait()


def another_process_tries(lock_file: Path) -> str:
    return subprocess.run(
        [sys.executable, "-c", TRY, str(lock_file)], capture_output=True, text=True, check=True
    ).stdout.strip()


async def test_an_exclusive_store_holds_its_lock_while_open_and_lets_go_on_close(tmp_path: Path) -> None:
    database = tmp_path / "backend.sqlite"
    store = await EventStore(database, exclusive=True).open()
    assert another_process_tries(Path(f"{database}.lock")) == "refused"
    await store.close()
    assert another_process_tries(Path(f"{database}.lock")) == "acquired"


async def test_a_second_writer_is_refused_with_a_clear_error_and_nothing_is_opened(tmp_path: Path) -> None:
    database = tmp_path / "backend.sqlite"
    with lock_held_elsewhere(Path(f"{database}.lock")):
        with pytest.raises(StoreLocked, match="open for writing in another process") as refused:
            await WriterLock(database, wait=0.3).acquire()
    assert refused.value.code == "store_locked"
    assert refused.value.http_status == 503  # retryable: the other writer may be a dying actor
    assert not database.exists()


async def test_the_lock_of_a_process_that_died_is_free_at_once(tmp_path: Path) -> None:
    database = tmp_path / "processor.sqlite"
    with lock_held_elsewhere(Path(f"{database}.lock")):
        pass  # the holder is killed here, as a crashed actor would be
    store = await EventStore(database, keep_log=False, exclusive=True).open()
    assert store.head == 0
    await store.close()


async def test_a_waiting_opener_gets_the_file_once_the_holder_lets_go(tmp_path: Path) -> None:
    database = tmp_path / "backend.sqlite"
    lock = WriterLock(database, wait=10.0)
    with lock_held_elsewhere(Path(f"{database}.lock")):
        attempt = asyncio.ensure_future(lock.acquire())
        await asyncio.sleep(0.3)
        assert not attempt.done()
    await attempt
    assert lock.held
    lock.release()


async def test_stores_that_are_not_org_files_take_no_lock(tmp_path: Path) -> None:
    # The SDK's replica: a CLI command may open it while `linkproc watch` has it open.
    replica = await EventStore(tmp_path / "client.sqlite", keep_pending=True).open()
    assert another_process_tries(tmp_path / "client.sqlite.lock") == "acquired"
    await replica.close()
