"""Fixtures every test may use: stores on real SQLite files and the loopback page server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.pages import page_server

from linkproc_ray.core.store import EventStore
from linkproc_ray.sync.backend import SyncBackend

__all__ = ["page_server"]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "org" / "backend.sqlite"


@pytest.fixture
async def fresh_store(store_path: Path) -> AsyncIterator[EventStore]:
    store = await EventStore(store_path).open()
    yield store
    await store.close()


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[SyncBackend]:
    sync = SyncBackend(EventStore(tmp_path / "backend.sqlite"))
    await sync.start()
    yield sync
    await sync.close()
