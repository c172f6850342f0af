"""The SQLite event store: an ordered log, the read tables, a small meta table, and the SDK's pending queue.

One :class:`EventStore` owns one aiosqlite writer connection (and a reader). Events and the rows
they materialize commit in the same transaction, so a reader never sees one
without the other and a cursor never runs ahead of its tables.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import sqlite3
import struct
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar, Final

import aiosqlite

from linkproc_ray.core.events import Event, NewEvent
from linkproc_ray.core.materialize import REINDEX_ALL, SCHEMA, TABLES, search_text, search_url, statements_for
from linkproc_ray.core.types import JSON
from linkproc_ray.core.writer_lock import WriterLock
from linkproc_ray.errors import CorruptStore, StorageFull, StoreError

log = logging.getLogger(__name__)

_LOG_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    parent INTEGER NOT NULL,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    args TEXT NOT NULL,
    client_id TEXT NOT NULL,
    session_id TEXT NOT NULL
);
"""
_META_SCHEMA: Final = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
# Commits a client made that the backend has not confirmed yet (the SDK only).
_PENDING_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS sdk_pending (
    pos INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    args TEXT NOT NULL,
    client_id TEXT NOT NULL,
    session_id TEXT NOT NULL
);
"""

# WAL lets readers (pulls, queries) run beside the writer; synchronous=FULL
# fsyncs the WAL on every commit, so an acknowledged push survives power loss,
# which NORMAL does not promise in WAL mode. A replica that can be rebuilt from
# the backend's log (the processor's) uses NORMAL: still never corrupt, and a
# commit lost to a power cut is pulled again from the cursor before it.
_PRAGMAS: Final = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA foreign_keys=ON",
)

_INSERT_EVENT: Final = (
    "INSERT INTO events (seq, parent, id, name, args, client_id, session_id) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_EVENTS: Final = (
    "SELECT seq, parent, id, name, args, client_id, session_id FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
)


_SET_META: Final = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"


def _dump_args(args: JSON) -> str:
    # Sorted keys: the same args are the same bytes on every replica.
    return json.dumps(args, separators=(",", ":"), sort_keys=True)


def _row_to_event(row: Sequence[Any]) -> Event:
    """The one mapping from a row of ``events`` (in ``_SELECT_EVENTS`` order) to an :class:`Event`."""
    return Event(
        seq=row[0],
        parent=row[1],
        id=row[2],
        name=row[3],
        args=json.loads(row[4]),
        client_id=row[5],
        session_id=row[6],
    )


class EventStore:
    """A log (optional) plus the materialized tables in one SQLite file.

    :param path: a file path, or ``":memory:"`` for tests.
    :param keep_log: store the events themselves (the backend and SDK do;
        the processor keeps only tables and its cursor).
    :param keep_pending: also keep a queue of unconfirmed local commits (the SDK).
    :param durable: fsync every commit (``synchronous=FULL``); only a replica
        rebuildable from elsewhere (the processor's) may pass ``False``.
    :param exclusive: hold the file's :class:`WriterLock` while open (an org
        actor's files; a second writer gets :class:`StoreLocked`).
    """

    opened: ClassVar[int] = 0
    """How many stores this process opened: single-flight boot is tested with it."""

    def __init__(
        self,
        path: str | Path,
        *,
        keep_log: bool = True,
        keep_pending: bool = False,
        durable: bool = True,
        exclusive: bool = False,
    ) -> None:
        self.path = str(path)
        self._writer_lock = WriterLock(Path(path)) if exclusive and path != ":memory:" else None
        self.durable = durable
        self.keep_log = keep_log
        self.keep_pending = keep_pending
        self._db: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        # Statements of one connection share its read snapshot while any of
        # them is open; without this lock a read interleaved with a slower one
        # (a page of events) saw the snapshot from before a commit it awaited.
        self._read_lock = asyncio.Lock()
        self._head = 0

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    async def open(self) -> EventStore:
        """Open the file, create the schema, and load the head; idempotent per object."""
        if self._db is not None:
            return self
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        if self._writer_lock is not None:
            await self._writer_lock.acquire()
        try:
            await self._connect()
        except BaseException:
            if self._writer_lock is not None:
                self._writer_lock.release()
            raise
        EventStore.opened += 1
        self._head = int(await self.get_meta("head") or 0)
        return self

    async def _connect(self) -> None:
        with _mapped_errors("open"):
            db = await aiosqlite.connect(self.path, isolation_level=None)
            try:
                await self._check_integrity(db)
            except BaseException:
                await db.close()
                raise
            for pragma in (*_PRAGMAS, f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}"):
                await db.execute(pragma)
            await db.create_function("search_text", 1, search_text, deterministic=True)
            await db.create_function("search_url", 1, search_url, deterministic=True)
            await db.executescript(
                _META_SCHEMA
                + SCHEMA
                + (_LOG_SCHEMA if self.keep_log else "")
                + (_PENDING_SCHEMA if self.keep_pending else "")
            )
            await self._build_search_index(db)
            # Readers get their own connection so they only ever see committed
            # rows, never the writer's open transaction (an in-memory database
            # cannot be shared, so tests read through the writer).
            reader = db
            if self.path != ":memory:":
                reader = await aiosqlite.connect(self.path, isolation_level=None)
                await reader.execute("PRAGMA busy_timeout=5000")
        self._db = db
        self._reader = reader

    @staticmethod
    async def _build_search_index(db: aiosqlite.Connection) -> None:
        """Index the links of a store made before the search index existed, once (the tables say what)."""
        async with db.execute("SELECT value FROM meta WHERE key = 'search_index'") as cursor:
            if await cursor.fetchone() is not None:
                return
        await db.execute("BEGIN IMMEDIATE")
        for sql, params in REINDEX_ALL:
            await db.execute(sql, params)
        await db.execute(_SET_META, ("search_index", "1"))
        await db.execute("COMMIT")

    async def _check_integrity(self, db: aiosqlite.Connection) -> None:
        """``PRAGMA quick_check`` before anything else touches the file: damage is found at open, not mid-push."""
        try:
            async with db.execute("PRAGMA quick_check") as cursor:
                problems = [str(row[0]) for row in await cursor.fetchall() if row[0] != "ok"]
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems:
            name = Path(self.path).name
            log.critical("%s failed its integrity check: %s", self.path, "; ".join(problems[:5]))
            raise CorruptStore(f"{name} failed its integrity check: {problems[0]}")

    async def open_or_rebuild(self) -> EventStore:
        """Open a replica; a damaged file is moved aside (kept for inspection) and an empty one opened.

        Only for a store that is a replica of another's log (the processor's):
        it refills by pulling that log from the start.
        """
        if self.keep_log or self.keep_pending:
            raise StoreError("only a replica without its own log may be rebuilt")
        try:
            return await self.open()
        except CorruptStore:
            aside = move_aside(Path(self.path))
            log.error("replica %s was damaged: moved to %s; rebuilding it from the log", self.path, aside)
            return await self.open()

    async def close(self) -> None:
        if self._reader is not None and self._reader is not self._db:
            await self._reader.close()
        self._reader = None
        if self._db is not None:
            await self._db.close()
            self._db = None
        if self._writer_lock is not None:
            self._writer_lock.release()

    @property
    def head(self) -> int:
        """The seq of the last applied event (0 for an empty log)."""
        return self._head

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: committed (durably) on exit, rolled back on any error."""
        db = self.db
        head_before = self._head
        with _mapped_errors("transaction"):
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                await db.execute("COMMIT")
            except BaseException:
                self._head = head_before
                # A full disk can make SQLite roll back by itself, and a failed
                # COMMIT leaves the transaction open: end it only if it is open.
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                raise

    async def apply(self, db: aiosqlite.Connection, events: Iterable[Event]) -> None:
        """Append (if keeping the log) and materialize events inside an open transaction.

        Events must continue the log exactly: ``seq == head + 1`` each.
        """
        head = self._head
        for event in events:
            if event.seq != head + 1:
                raise StoreError(f"event seq {event.seq} does not follow head {head}")
            if self.keep_log:
                await db.execute(
                    _INSERT_EVENT,
                    (
                        event.seq,
                        event.parent,
                        event.id,
                        event.name,
                        _dump_args(event.args),
                        event.client_id,
                        event.session_id,
                    ),
                )
            await self.materialize(db, event)
            head = event.seq
        await db.execute(_SET_META, ("head", str(head)))
        self._head = head

    @staticmethod
    async def materialize(db: aiosqlite.Connection, event: Event) -> None:
        """Apply one event to the read tables only (no log row, no head): a rebase replays through this."""
        for sql, params in statements_for(event):
            await db.execute(sql, params)

    async def clear_tables(self, db: aiosqlite.Connection) -> None:
        """Empty every read table inside an open transaction (log and head stay): a rebase starts here."""
        for table in TABLES:
            await db.execute(f"DELETE FROM {table}")

    async def read_events(self, after: int, limit: int, *, in_transaction: bool = False) -> list[Event]:
        """Events with ``seq > after``, oldest first: committed ones, or the open transaction's view."""
        _, rows = await self._read(self.db if in_transaction else self._read_db, _SELECT_EVENTS, (after, limit))
        return [_row_to_event(row) for row in rows]

    # -- the SDK's queue of unconfirmed commits ---------------------------------

    async def queue_pending(self, db: aiosqlite.Connection, event: NewEvent) -> None:
        """Queue a local commit inside an open transaction, after every earlier one."""
        await db.execute(
            "INSERT INTO sdk_pending (id, name, args, client_id, session_id) VALUES (?, ?, ?, ?, ?)",
            (event.id, event.name, _dump_args(event.args), event.client_id, event.session_id),
        )

    async def pending_events(self) -> list[NewEvent]:
        """Queued commits, oldest first, as the writer sees them."""
        rows = await self.fetchall(
            "SELECT id, name, args, client_id, session_id FROM sdk_pending ORDER BY pos", in_transaction=True
        )
        return [NewEvent(r["id"], r["name"], json.loads(r["args"]), r["client_id"], r["session_id"]) for r in rows]

    async def unqueue(self, db: aiosqlite.Connection, event_ids: Iterable[str]) -> None:
        """Drop confirmed commits from the queue inside an open transaction."""
        await db.executemany("DELETE FROM sdk_pending WHERE id = ?", [(i,) for i in event_ids])

    async def seqs_of(self, event_ids: Sequence[str]) -> dict[str, int]:
        """The seqs already given to any of these event ids (retried pushes)."""
        if not event_ids:
            return {}
        marks = ",".join("?" * len(event_ids))
        rows = await self.fetchall(f"SELECT id, seq FROM events WHERE id IN ({marks})", event_ids, in_transaction=True)
        return {row["id"]: row["seq"] for row in rows}

    async def get_meta(self, key: str) -> str | None:
        rows = await self.fetchall("SELECT value FROM meta WHERE key = ?", (key,), in_transaction=True)
        return rows[0]["value"] if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        with _mapped_errors("write"):
            await self.db.execute(_SET_META, (key, value))

    @property
    def _read_db(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise StoreError("store is not open")
        return self._reader

    async def fetchall(self, sql: str, params: Sequence[Any] = (), *, in_transaction: bool = False) -> list[JSON]:
        """Rows of a read query as dicts: committed rows, or the open transaction's view."""
        names, rows = await self._read(self.db if in_transaction else self._read_db, sql, params)
        return [dict(zip(names, row, strict=False)) for row in rows]

    async def _read(
        self, db: aiosqlite.Connection, sql: str, params: Sequence[Any]
    ) -> tuple[list[str], Iterable[Sequence[Any]]]:
        """One statement run to completion before any other read of this store starts.

        It runs to the end even when its caller is cancelled (a socket closed, a long poll
        given up): a statement abandoned half-way kept its read snapshot open, and the next
        reads on that connection missed commits made since (a pull saw no events below the head).
        """
        return await asyncio.shield(self._read_to_end(db, sql, params))

    async def _read_to_end(
        self, db: aiosqlite.Connection, sql: str, params: Sequence[Any]
    ) -> tuple[list[str], Iterable[Sequence[Any]]]:
        async with self._read_lock:
            with _mapped_errors("read"):
                async with db.execute(sql, params) as cursor:
                    names = [d[0] for d in cursor.description]
                    return names, await cursor.fetchall()

    async def dump_tables(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every read table's rows in a stable order: replicas compare these."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table in TABLES:
            _, rows = await self._read(self._read_db, f"SELECT * FROM {table} ORDER BY rowid", ())
            out[table] = [tuple(row) for row in rows]
        return out


def move_aside(path: Path) -> Path:
    """Rename a damaged database (and its WAL) out of the way, keeping it; returns its new name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(f"{aside}{suffix}")
    Path(f"{path}-shm").unlink(missing_ok=True)
    return aside


def copy_database(source: Path, target: Path) -> int:
    """A consistent copy of a live SQLite file through SQLite's online backup API; returns the copy's head.

    The copy is one snapshot (writers go on meanwhile), checked with
    ``PRAGMA integrity_check`` before it counts. Any old ``target`` is overwritten.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with _mapped_errors("backup"):
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)
                problems = [row[0] for row in dst.execute("PRAGMA integrity_check") if row[0] != "ok"]
                if problems:
                    raise CorruptStore(f"the copy of {source.name} failed its integrity check: {problems[0]}")
                row = dst.execute("SELECT value FROM meta WHERE key = 'head'").fetchone()
            finally:
                dst.close()
        finally:
            src.close()
    return int(row[0]) if row else 0


_SHM_DMS_BYTE: Final = 128
"""The byte of a WAL database's ``-shm`` file that every open connection holds a shared lock on (SQLite's unix VFS)."""


def in_use(path: Path) -> bool:
    """Whether another process (a running backend) has this WAL database open.

    Asked of the kernel, not of SQLite: a probe for a write lock on the byte every
    connection holds a read lock on. Nothing is changed, so a live file is never touched.
    """
    shm = Path(f"{path}-shm")
    try:
        handle = shm.open("rb")
    except FileNotFoundError:
        return False  # no connection is open: the last one to close removes it
    with handle:
        probe = struct.pack("@hhqqi", fcntl.F_WRLCK, os.SEEK_SET, _SHM_DMS_BYTE, 1, 0)
        answer = fcntl.fcntl(handle, fcntl.F_GETLK, probe)
    return int(struct.unpack("@hhqqi", answer)[0]) != fcntl.F_UNLCK


class _mapped_errors:
    """Turn every ``sqlite3`` error into :class:`StoreError`, in one place.

    A full disk becomes :class:`StorageFull` and a damaged file :class:`CorruptStore`,
    read from SQLite's own result code, never from its message.
    """

    def __init__(self, operation: str) -> None:
        self.operation = operation

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or not isinstance(exc, sqlite3.Error):
            return
        primary = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if primary == sqlite3.SQLITE_FULL:
            raise StorageFull(f"sqlite {self.operation} failed: the data dir's disk is full") from exc
        if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            log.critical("sqlite %s found a damaged database: %s", self.operation, exc)
            raise CorruptStore(f"sqlite {self.operation} failed: {exc}") from exc
        raise StoreError(f"sqlite {self.operation} failed: {exc}") from exc
