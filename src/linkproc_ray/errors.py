"""The project's exception tree.

Every failure a user can see has a ``code``; processing failures become the
``error`` of ``v1.LinkProcessingFailed``::

    LinkprocError
    ├── FetchError                    fetch:*
    │   ├── FetchTimeout              fetch:timeout
    │   ├── FetchBlocked              fetch:blocked
    │   ├── FetchDNS                  fetch:dns
    │   ├── FetchConnect              fetch:connect
    │   ├── FetchTooManyRedirects     fetch:too_many_redirects
    │   ├── FetchTooLarge             fetch:too_large
    │   ├── FetchUnsupportedType      fetch:unsupported_type
    │   ├── FetchHTTPStatus           fetch:<status>
    │   └── ParseTimeout              parse:timeout
    ├── AIError                       ai:error
    │   ├── AITimeout                 ai:timeout
    │   └── AIInvalidOutput           ai:invalid_output
    ├── SyncError
    │   ├── ServerAhead               server_ahead (carries the head)
    │   ├── InvalidEvent              invalid_request (names event and field)
    │   └── BatchTooLarge             too_large
    ├── InvalidURL                    invalid_request
    ├── AuthError
    │   ├── Unauthorized              unauthorized (401)
    │   └── Forbidden                 forbidden (403)
    ├── ConfigError                   config
    └── StoreError                    store
"""

from __future__ import annotations


class LinkprocError(Exception):
    """Base of every error this package raises on purpose."""

    code: str = "error"


class FetchError(LinkprocError):
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


class ParseTimeout(FetchError):
    """The page arrived but parsing it (queued for a CPU, then run) took too long."""

    code = "parse:timeout"


class AIError(LinkprocError):
    """The summarizer failed."""

    code = "ai:error"


class AITimeout(AIError):
    """The summarizer did not answer in time."""

    code = "ai:timeout"


class AIInvalidOutput(AIError):
    """The summarizer answered, but not with a valid ``{summary, tags}``."""

    code = "ai:invalid_output"


class SyncError(LinkprocError):
    """A push or pull was refused."""

    code = "sync"


class ServerAhead(SyncError):
    """The push's parent is not the head: pull, rebase and push again."""

    code = "server_ahead"

    def __init__(self, head: int) -> None:
        super().__init__(f"server is ahead: head is {head}")
        self.head = head


class InvalidEvent(SyncError):
    """An event failed validation; nothing of its batch was stored."""

    code = "invalid_request"

    def __init__(self, message: str, *, event: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.event = event
        self.field = field


class BatchTooLarge(SyncError):
    """A push over the event-count or byte limit."""

    code = "too_large"


class InvalidURL(LinkprocError):
    """A URL that is not an absolute http(s) URL within the length limit."""

    code = "invalid_request"


class StoreError(LinkprocError):
    """SQLite failed underneath the event store."""

    code = "store"


class AuthError(LinkprocError):
    """A request's credentials were refused."""


class Unauthorized(AuthError):
    """Missing, malformed, expired or badly signed token."""

    code = "unauthorized"


class Forbidden(AuthError):
    """A valid token for another organization."""

    code = "forbidden"


class ConfigError(LinkprocError):
    """A setting is missing or wrong; the message names it."""

    code = "config"
