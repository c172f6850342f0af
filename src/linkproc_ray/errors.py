"""The project's exception tree, and the one table that maps it to HTTP and WebSocket answers.

Every error carries its ``code`` (what it is: the ``error`` of
``v1.LinkProcessingFailed``, or the detail's prefix), and, for the API, the
``http_status`` and ``http_error`` (one of the codes docs/API.md names) of its
answer and the ``close_code`` a sync socket closes with. The HTTP and
WebSocket layers read these attributes and nothing else; a subclass that
sets none of them answers as its parent does (the base: 503 ``unavailable``,
close 1011)::

    error                             code                 HTTP status / close code
    LinkprocError                     error                503 / 1011
    ├── RequestError                  invalid_request      422 / 1008
    │   ├── MalformedBody             invalid_request      400
    │   ├── InvalidOrgId              invalid_request      400
    │   ├── InvalidEvent              invalid_request      422 (names event and field)
    │   ├── InvalidURL                invalid_request      422
    │   ├── InvalidTag                invalid_request      422
    │   └── BatchTooLarge             too_large            413
    ├── NotFound                      not_found            404
    ├── AuthError
    │   ├── Unauthorized              unauthorized         401 / 4401
    │   ├── Forbidden                 forbidden            403 / 4403
    │   └── TokenRefused              unauthorized         the SDK's token was refused: retrying cannot help
    ├── SyncError                     sync
    │   ├── ServerAhead               server_ahead         409 (carries the head)
    │   ├── PushRejected              sync                 the SDK's pending commits were refused
    │   ├── LogGap                    sync                 a replica got events that do not follow its head
    │   └── ConnectionLost            sync                 the SDK's live socket closed; it reconnects
    ├── Unavailable                   unavailable
    │   ├── StoreError                store                SQLite failed underneath the event store
    │   │   ├── StorageFull           storage_full         507: the data dir's filesystem is full; nothing was stored
    │   │   ├── CorruptStore          store_corrupt        a file failed its integrity check (replicas rebuild)
    │   │   └── StoreLocked           store_locked         another process holds the org file's writer lock
    │   ├── ActorEvicted              unavailable          the org actor is hibernating; look it up again
    │   └── ReplicaWornOut            unavailable          an ingress replica's health check asks Serve to replace it
    ├── ConfigError                   config
    ├── BackupError                   backup               a backup or restore refused; nothing was replaced
    ├── StaleDecision                 stale_decision       a processing decision no longer holds
    └── EnrichmentError               (processing failures: the code of LinkProcessingFailed)
        ├── FetchError                fetch:error
        │   ├── FetchTimeout          fetch:timeout
        │   ├── FetchBlocked          fetch:blocked
        │   ├── FetchDNS              fetch:dns
        │   ├── FetchConnect          fetch:connect
        │   ├── FetchTooManyRedirects fetch:too_many_redirects
        │   ├── FetchTooLarge         fetch:too_large
        │   ├── FetchUnsupportedType  fetch:unsupported_type
        │   ├── FetchHTTPStatus       fetch:<status>
        │   └── FetchRetryable        (its error's code)   an attempt that may pass: retried, else its error
        ├── ParseError                parse:error
        │   └── ParseTimeout          parse:timeout
        └── AIError                   ai:error
            ├── AITimeout             ai:timeout
            └── AIInvalidOutput       ai:invalid_output
"""

from __future__ import annotations

from typing import Any, ClassVar

CLOSE_POLICY = 1008
CLOSE_SERVER_ERROR = 1011
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403


class LinkprocError(Exception):
    """Base of every error this package raises on purpose."""

    code: str = "error"
    http_status: ClassVar[int] = 503
    http_error: ClassVar[str] = "unavailable"
    close_code: ClassVar[int] = CLOSE_SERVER_ERROR

    def details(self) -> dict[str, Any]:
        """Extra fields of the error body beside ``error`` and ``detail``."""
        return {}


# --- requests ------------------------------------------------------------------


class RequestError(LinkprocError):
    """A request the API refuses as it stands; nothing of it was stored."""

    code = "invalid_request"
    http_status = 422
    http_error = "invalid_request"
    close_code = CLOSE_POLICY


class MalformedBody(RequestError):
    """A body or frame that is not the JSON object the route expects."""

    http_status = 400

    def details(self) -> dict[str, Any]:
        return {"field": "body"}


class InvalidOrgId(RequestError):
    """An organization id outside ``[A-Za-z0-9][A-Za-z0-9_-]{0,63}``."""

    http_status = 400


class InvalidEvent(RequestError):
    """An event failed validation; nothing of its batch was stored."""

    def __init__(self, message: str, *, event: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.event = event
        self.field = field

    def details(self) -> dict[str, Any]:
        return {"event": self.event, "field": self.field}


class InvalidURL(RequestError):
    """A URL that is not an absolute http(s) URL within the length limit."""


class InvalidTag(RequestError):
    """A tag name with nothing but spaces, or tags that are not a list of strings."""


class BatchTooLarge(RequestError):
    """A push or body over the event-count or byte limit."""

    code = "too_large"
    http_status = 413
    http_error = "too_large"


class NotFound(LinkprocError):
    """No such link (or other entity) in the org."""

    code = "not_found"
    http_status = 404
    http_error = "not_found"


# --- auth ------------------------------------------------------------------------


class AuthError(LinkprocError):
    """A request's credentials were refused."""


class Unauthorized(AuthError):
    """Missing, malformed, expired or badly signed token."""

    code = "unauthorized"
    http_status = 401
    http_error = "unauthorized"
    close_code = CLOSE_UNAUTHORIZED


class Forbidden(AuthError):
    """A valid token for another organization."""

    code = "forbidden"
    http_status = 403
    http_error = "forbidden"
    close_code = CLOSE_FORBIDDEN


class TokenRefused(AuthError):
    """The server refused the SDK's token (401/403, close 4401/4403): retrying cannot help."""

    code = "unauthorized"


# --- sync ------------------------------------------------------------------------


class SyncError(LinkprocError):
    """A push or pull was refused, or a replica cannot follow the log."""

    code = "sync"


class ServerAhead(SyncError):
    """The push's parent is not the head: pull, rebase and push again."""

    code = "server_ahead"
    http_status = 409
    http_error = "server_ahead"

    def __init__(self, head: int) -> None:
        super().__init__(f"server is ahead: head is {head}")
        self.head = head

    def details(self) -> dict[str, Any]:
        return {"head": self.head}


class PushRejected(SyncError):
    """The server refused the SDK's pending commits as invalid: they stay queued and the status says so."""


class LogGap(SyncError):
    """Events that do not continue a replica's head: it must pull what is missing first."""


class ConnectionLost(SyncError):
    """The SDK's live socket closed (not for a refused token): it backs off and reconnects."""


# --- availability ----------------------------------------------------------------


class Unavailable(LinkprocError):
    """The org cannot answer right now; the request may be retried."""

    code = "unavailable"


class StoreError(Unavailable):
    """SQLite failed underneath the event store."""

    code = "store"


class StorageFull(StoreError):
    """The data dir's filesystem is full: the write was rolled back, so nothing of it was stored.

    The org answers again as soon as space is freed; nothing needs a restart.
    """

    code = "storage_full"
    http_status = 507
    http_error = "storage_full"


class CorruptStore(StoreError):
    """A SQLite file failed its integrity check at open (or SQLite found it damaged later).

    A replica is moved aside and rebuilt from the log; a backend's log needs a
    restore from a backup (README "Backups").
    """

    code = "store_corrupt"


class StoreLocked(StoreError):
    """Another process holds the org file's writer lock: two actors must never write one log.

    Seen while a dead node's actor has not yet let go (its NFS lease runs out);
    the request may be retried.
    """

    code = "store_locked"


class ActorEvicted(Unavailable):
    """The org actor is exiting after its idle TTL; look it up again (that re-creates it)."""


class ReplicaWornOut(Unavailable):
    """An ingress replica's health check failing on purpose: it has held too many org actors, so Serve replaces it.

    Only Serve sees it; requests keep being answered until the replica drains.
    """


class ConfigError(LinkprocError):
    """A setting is missing or wrong; the message names it."""

    code = "config"


class BackupError(LinkprocError):
    """A backup or restore that cannot be done as asked; the message says why, and nothing was replaced."""

    code = "backup"


class StaleDecision(LinkprocError):
    """A processing decision no longer holds: the link was deleted or its request ended meanwhile."""

    code = "stale_decision"


# --- enrichment: the codes of v1.LinkProcessingFailed -------------------------------


class EnrichmentError(LinkprocError):
    """A step of processing one link failed; ``code`` becomes the link's visible error."""

    code = "enrichment:error"


class FetchError(EnrichmentError):
    """The page could not be fetched."""

    code = "fetch:error"


class FetchTimeout(FetchError):
    """The fetch ran past its time budget."""

    code = "fetch:timeout"


class FetchBlocked(FetchError):
    """The URL or an address it resolves to is refused by policy (SSRF guard)."""

    code = "fetch:blocked"


class FetchDNS(FetchError):
    """The host name did not resolve."""

    code = "fetch:dns"


class FetchConnect(FetchError):
    """No connection could be made, or it broke off."""

    code = "fetch:connect"


class FetchTooManyRedirects(FetchError):
    """More redirects than the policy allows, or a loop."""

    code = "fetch:too_many_redirects"


class FetchTooLarge(FetchError):
    """The body grew past the cap (counted after decompression)."""

    code = "fetch:too_large"


class FetchUnsupportedType(FetchError):
    """The response is not HTML."""

    code = "fetch:unsupported_type"


class FetchHTTPStatus(FetchError):
    """The server answered with an error status."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message or f"HTTP {status}")
        self.status = status
        self.code = f"fetch:{status}"


class FetchRetryable(FetchError):
    """An attempt failed in a way that may pass (429, 5xx): the fetcher retries it, else raises ``error``."""

    def __init__(self, error: FetchError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
        self.code = error.code


class ParseError(EnrichmentError):
    """The page arrived but could not be parsed."""

    code = "parse:error"


class ParseTimeout(ParseError):
    """Parsing the page (its own run, not the wait for a CPU) took too long."""

    code = "parse:timeout"


class AIError(EnrichmentError):
    """The summarizer failed."""

    code = "ai:error"


class AITimeout(AIError):
    """The summarizer did not answer in time."""

    code = "ai:timeout"


class AIInvalidOutput(AIError):
    """The summarizer answered, but not with a valid ``{summary, tags}``."""

    code = "ai:invalid_output"
