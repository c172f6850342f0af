"""The protocol's limits, defined once: events, pushes, pulls and the envelopes around them (docs/API.md)."""

from __future__ import annotations

from typing import Final

MAX_ID_LENGTH: Final = 128
"""Characters of an event, entity, client or session id."""

MAX_URL_LENGTH: Final = 2048
"""Characters of a saved URL (and of every URL in metadata)."""

MAX_PUSH_EVENTS: Final = 1000
"""Events in one push."""

MAX_PUSH_BYTES: Final = 1_000_000
"""Bytes of a push's events, encoded as compact JSON."""

ENVELOPE_BYTES: Final = 64 * 1024
"""Room for what wraps a push's events: a REST body or a socket frame may be this much larger."""

MAX_BODY_BYTES: Final = MAX_PUSH_BYTES + ENVELOPE_BYTES
"""A REST push body, or a client's socket frame; larger is refused (413, close 1008)."""

MAX_LINK_BODY_BYTES: Final = 16 * 1024
"""A ``POST /links`` body."""

MAX_PULL_LIMIT: Final = 10_000
"""Events one pull returns at most."""

DEFAULT_PULL_LIMIT: Final = 1000

MAX_PULL_WAIT: Final = 30.0
"""Seconds a long poll may wait for news."""

MAX_SEQ: Final = 2**63 - 1
"""The largest seq, cursor or row id there can be: SQLite's largest integer."""

MAX_IMPORT_LINKS: Final = 1000
"""Links in one ``POST /links:batch``."""

MAX_IMPORT_BODY_BYTES: Final = 4 * 1024 * 1024
"""A ``POST /links:batch`` body: 1,000 URLs of the longest length, with tags, fit."""
