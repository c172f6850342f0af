"""Where the SDK's live sync stands, for display and alerts."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SyncState(enum.Enum):
    """Where the live sync stands; :attr:`SyncStatus.pending_not_draining` flags a stuck queue."""

    OFFLINE = "offline"
    """Not syncing (not started, or stopped)."""
    CONNECTING = "connecting"
    CATCHING_UP = "catching_up"
    """Connected; fetching the backlog before pushing."""
    LIVE = "live"
    """Connected over the WebSocket and caught up."""
    POLLING = "polling"
    """Connected over the REST fallback (long polls)."""
    RETRYING = "retrying"
    """Lost the connection; waiting out the backoff before the next attempt."""
    UNAUTHORIZED = "unauthorized"
    """The server refused the token (4401/4403, 401/403); syncing stopped."""


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """A snapshot of the client's sync, for display and alerts."""

    state: SyncState
    head: int
    pending: int
    oldest_pending_age: float | None
    last_error: str | None
    pending_not_draining: bool
    """Commits older than the alarm are still unconfirmed although the client is syncing (or refused)."""
