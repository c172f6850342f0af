"""What the OpenAPI document says about each route: bodies, answers and every status it can give.

The routes read their bodies themselves (size limit first, then one parser for
REST and socket), so these models document the contract without taking part in
handling a request; the Schemathesis run (tests/integration/test_api_fuzz.py)
holds the two together.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from linkproc_ray.api.auth import ORG_ID
from linkproc_ray.core.events import ARGS_BY_NAME
from linkproc_ray.core.limits import MAX_ID_LENGTH, MAX_IMPORT_LINKS, MAX_PUSH_EVENTS, MAX_SEQ
from linkproc_ray.errors import (
    BatchTooLarge,
    Forbidden,
    InvalidOrgId,
    LinkprocError,
    MalformedBody,
    NotFound,
    RequestError,
    ServerAhead,
    StorageFull,
    Unauthorized,
    Unavailable,
)

ORG_PARAMETER: Final[dict[str, Any]] = {"pattern": ORG_ID.pattern}
"""The org path parameter's schema: the pattern is documented here and checked by the route (400 outside it)."""

URL_FIELD: Final[dict[str, Any]] = {"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"}
"""A saved URL is absolute http(s); its host and port are checked when it is canonicalized (422 if bad)."""


class ErrorBody(BaseModel):
    """Every error answer: ``{error, detail}``, plus ``field``/``event``/``head`` where docs/API.md says so."""

    model_config = ConfigDict(extra="allow")

    error: str
    detail: str


class Processing(BaseModel):
    status: Literal["pending", "completed", "failed", "cancelled", "reprocess_requested"] | None
    error: str | None
    attempts: int
    updatedAt: str | None


class Metadata(BaseModel):
    title: str | None
    description: str | None
    image: str | None
    favicon: str | None
    siteName: str | None
    canonicalUrl: str | None
    fetchedAt: str


class LinkSummary(BaseModel):
    text: str
    model: str
    summarizedAt: str


class Link(BaseModel):
    id: str
    url: str
    domain: str
    status: Literal["unread", "completed"]
    source: str | None
    createdAt: str
    completedAt: str | None
    deletedAt: str | None
    processing: Processing
    metadata: Metadata | None
    summary: LinkSummary | None
    tags: list[str] = Field(default=[], description="The link's live tags, oldest first.")
    suggestedTags: list[str] = Field(default=[], description="Suggested names not among `tags`, not dismissed.")


class Snippet(BaseModel):
    text: str = Field(description="Plain text around the best match (not HTML).")
    marks: list[list[int]] = Field(description="`[start, end)` character ranges of `text` that matched.")


class SearchInfo(BaseModel):
    rank: float = Field(description="bm25 score: lower is better; results come best first.")
    snippet: Snippet


class SearchHit(Link):
    search: SearchInfo | None = Field(default=None, description="Only with `q`.")


class LinkPage(BaseModel):
    links: list[SearchHit]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one.")


class ImportItem(BaseModel):
    url: str = Field(description="Any string: each entry is judged alone, a bad one answers `invalid`.")
    tags: list[str] = Field(default=[], description="Tag names (folders); new names become tags of the org.")


class ImportBody(BaseModel):
    links: list[ImportItem | str] = Field(max_length=MAX_IMPORT_LINKS, description="Entries: objects, or bare URLs.")
    source: str | None = Field(default=None, max_length=100, description="Where the links came from, e.g. `import`.")


class ImportResult(BaseModel):
    index: int = Field(description="The entry's place in `links`, from 0.")
    url: str = Field(description="The canonical URL (as given, for an invalid entry).")
    outcome: Literal["created", "exists", "duplicate", "invalid"]
    id: str | None = Field(default=None, description="The link's id (not for `invalid`).")
    reason: str | None = Field(default=None, description="Why an entry is `invalid`.")


class ImportCounts(BaseModel):
    created: int
    exists: int
    duplicate: int
    invalid: int


class Imported(BaseModel):
    results: list[ImportResult]
    counts: ImportCounts


class Event(BaseModel):
    seq: int
    parent: int
    id: str
    name: str
    args: dict[str, Any]
    clientId: str
    sessionId: str


class History(BaseModel):
    events: list[Event]


class Pulled(BaseModel):
    events: list[Event]
    head: int


class Pushed(BaseModel):
    head: int
    seqs: list[int]


class Health(BaseModel):
    status: Literal["ok"]


def _new_event_schema(name: str) -> dict[str, Any]:
    """One event name's envelope, with the schema of its args (the models events.py validates with)."""
    text = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}
    return {
        "type": "object",
        "title": name,
        "required": ["id", "name", "args", "clientId", "sessionId"],
        "properties": {
            "id": text,
            "name": {"type": "string", "enum": [name]},
            "args": ARGS_BY_NAME[name].model_json_schema(),
            "clientId": text,
            "sessionId": text,
        },
    }


PUSH_BODY: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["parent", "events"],
    "properties": {
        "parent": {"type": "integer", "minimum": 0, "maximum": MAX_SEQ, "description": "The head the client had."},
        "events": {
            "type": "array",
            "maxItems": MAX_PUSH_EVENTS,
            "description": "Event ids are unique within a push (a repeated id is 422).",
            "items": {"oneOf": [_new_event_schema(name) for name in sorted(ARGS_BY_NAME)]},
        },
    },
}


def request_body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` of a route that reads its JSON body itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


Answer = tuple[int, str]


def _answer(error: type[LinkprocError], description: str) -> Answer:
    return error.http_status, f"`{error.http_error}`: {description}"


# Statuses every org route can answer, beside its own.
_AUTH: Final[tuple[Answer, ...]] = (
    _answer(InvalidOrgId, "the org id does not match the pattern"),
    _answer(Unauthorized, "missing, malformed, expired or badly signed token (with `WWW-Authenticate: Bearer`)"),
    _answer(Forbidden, "the token is for another org"),
    (422, "`invalid_request`: a query parameter out of range"),
    _answer(Unavailable, "the org cannot answer now (`detail` starts with the cause, e.g. `store_corrupt:`)"),
)
_WRITE: Final = _answer(StorageFull, "the data dir's disk is full; nothing was stored")


def responses(*extra: Answer, writes: bool = False) -> dict[int | str, dict[str, Any]]:
    """The error answers of an org route: the common ones, a write's, and its own (one entry per status)."""
    described: dict[int, list[str]] = {}
    for status, description in (*_AUTH, *((_WRITE,) if writes else ()), *extra):
        described.setdefault(status, []).append(description)
    return {
        status: {"model": ErrorBody, "description": "; ".join(texts)} for status, texts in sorted(described.items())
    }


NOT_FOUND: Final = _answer(NotFound, "no such link")
SERVER_AHEAD: Final = _answer(ServerAhead, "`parent` is not the head; the body carries `head`")
TOO_LARGE: Final = _answer(BatchTooLarge, "over the event-count or byte limit")
MALFORMED: Final = _answer(MalformedBody, "the body is not JSON (`field` is `body`)")
INVALID: Final = (RequestError.http_status, "`invalid_request`: an event or the URL failed validation (names `field`)")

LINK_LINKS: Final[dict[str, Any]] = {
    "GetLink": {"operationId": "get_link", "parameters": {"link_id": "$response.body#/id"}},
    "ReprocessLink": {"operationId": "reprocess_link", "parameters": {"link_id": "$response.body#/id"}},
    "DeleteLink": {"operationId": "delete_link", "parameters": {"link_id": "$response.body#/id"}},
}
"""OpenAPI links from a link answer to the routes that take its id (the stateful fuzz follows them)."""


def validation_errors_as_error_body(document: dict[str, Any]) -> dict[str, Any]:
    """Every route's 422 as the app answers it: ``{error, detail, field}``, not FastAPI's default ``HTTPValidationError``.

    The app's one validation handler answers every route the same way, so
    FastAPI's default description of a 422 is wrong everywhere it appears.
    """
    body = {"$ref": "#/components/schemas/ErrorBody"}
    document.setdefault("components", {}).setdefault("schemas", {}).setdefault(
        "ErrorBody", ErrorBody.model_json_schema()
    )
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            answer = operation.get("responses", {}).get("422")
            if answer is not None:
                answer["content"] = {"application/json": {"schema": body}}
    return document
