"""A real sync server for the tests: the FastAPI app with its socket, on uvicorn over 127.0.0.1.

It runs in a thread with its own event loop (as a Serve replica would run
apart from its clients) over a :class:`LocalGateway`; tests talk to it only
through real sockets, and each test uses an org of its own.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn

from linkproc_ray.api.auth import TokenVerifier, issue_token
from linkproc_ray.api.gateway import LocalGateway
from linkproc_ray.api.http import create_api
from linkproc_ray.api.ws import live_hub
from linkproc_ray.config import Settings
from linkproc_ray.sync.backend import SyncBackend
from linkproc_ray.sync.live import LiveHub

T = TypeVar("T")


class SyncServer:
    """The app on a loopback port; ``call`` runs a coroutine on the server's own loop."""

    def __init__(self, data_dir: Path) -> None:
        self.settings = Settings(data_dir=data_dir, jwt_secret="sync-tests-secret-of-at-least-32-bytes")
        self.gateway = LocalGateway(data_dir)
        api = create_api()
        api.state.gateway = self.gateway
        api.state.verifier = TokenVerifier(self.settings)
        self.api = api
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        config = uvicorn.Config(
            api, log_level="warning", ws="websockets-sansio", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="sync-test-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._server.serve(sockets=[self._socket]))
        self._loop.run_until_complete(self.gateway.close())

    def start(self) -> SyncServer:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the sync test server did not start")
            threading.Event().wait(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """Run ``coroutine`` on the server's loop; await the result from the test's loop."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return asyncio.wrap_future(future)

    def token(self, org: str, ttl: float = 3600) -> str:
        return issue_token(self.settings, org, ttl=ttl)

    async def backend(self, org: str) -> SyncBackend:
        return await self.call(self.gateway.backend(org))

    @property
    def hub(self) -> LiveHub:
        return live_hub(self.api)


@pytest.fixture(scope="session")
def sync_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncServer]:
    server = SyncServer(tmp_path_factory.mktemp("sync-server")).start()
    yield server
    server.stop()


@pytest.fixture
def org() -> str:
    return f"org-{uuid.uuid4().hex[:12]}"


async def eventually(condition: Callable[[], Awaitable[bool]], *, timeout: float = 10.0) -> None:
    """Wait until ``condition`` holds, failing the test if it never does."""
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)
