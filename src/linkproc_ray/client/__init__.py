"""The Python SDK: an offline-first local replica of one org's log, synced live.

``from linkproc_ray.client import LinkprocClient`` is the public entry point.
"""

from linkproc_ray.client.models import Link, LinkSummary, Metadata, Processing
from linkproc_ray.client.replica import Replica
from linkproc_ray.client.sdk import LinkprocClient
from linkproc_ray.client.status import SyncState, SyncStatus
from linkproc_ray.core.backoff import Backoff
from linkproc_ray.errors import PushRejected

__all__ = [
    "Backoff",
    "Link",
    "LinkSummary",
    "LinkprocClient",
    "Metadata",
    "Processing",
    "PushRejected",
    "Replica",
    "SyncState",
    "SyncStatus",
]
