"""Backups of every org's log, taken while the system runs, and restores of them.

Only ``backend.sqlite`` is copied: it holds the log and everything made from it.
``processor.sqlite`` is a replica; a restore removes it and the processor
rebuilds it from the restored log. Each copy goes through SQLite's online
backup API (one consistent snapshot while writers go on) and is checked
before it counts; a backup is complete only once its manifest is written.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from linkproc_ray.core.events import utc_now
from linkproc_ray.core.store import copy_database, in_use
from linkproc_ray.errors import BackupError, StoreError

LOG_FILE: Final = "backend.sqlite"
REPLICA_FILE: Final = "processor.sqlite"
MANIFEST: Final = "manifest.json"
_SIDE_FILES: Final = ("-wal", "-shm")


@dataclass(frozen=True, slots=True)
class OrgCopy:
    """One org's log in a backup: its head when copied, and the copy's size."""

    org: str
    head: int
    bytes: int


def _orgs(root: Path) -> list[tuple[str, Path]]:
    """``(org, path of its log)`` under ``root/orgs``, by org id."""
    return sorted((path.parent.name, path) for path in (root / "orgs").glob(f"*/{LOG_FILE}"))


def backup(data_dir: Path, target: Path) -> list[OrgCopy]:
    """Copy every org's log under ``data_dir`` into ``target`` (a new or empty folder), then its manifest."""
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: back up into a new folder")
    copies: list[OrgCopy] = []
    for org, source in _orgs(data_dir):
        final = target / "orgs" / org / LOG_FILE
        partial = final.with_name(f"{LOG_FILE}.partial")
        head = copy_database(source, partial)
        partial.rename(final)
        copies.append(OrgCopy(org, head, final.stat().st_size))
    manifest = {"created_at": utc_now(), "orgs": [asdict(c) for c in copies]}
    target.mkdir(parents=True, exist_ok=True)
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return copies


def read_manifest(source: Path) -> list[OrgCopy]:
    """The orgs of a complete backup; :class:`BackupError` for a folder that is not one."""
    try:
        manifest = json.loads((source / MANIFEST).read_text())
        return [OrgCopy(str(o["org"]), int(o["head"]), int(o["bytes"])) for o in manifest["orgs"]]
    except FileNotFoundError:
        raise BackupError(f"{source} holds no {MANIFEST}: not a complete backup") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{source / MANIFEST} is not a backup manifest: {exc}") from None


def restore(source: Path, data_dir: Path, orgs: list[str] | None = None) -> list[OrgCopy]:
    """Put the backup's logs (or those of ``orgs``) back under ``data_dir``; stop those orgs first.

    Every copy is checked first (integrity, head as in the manifest), and an org
    whose log is open elsewhere is refused, so a refusal replaces nothing. Each
    org's replica is removed: it may be ahead of the restored log.
    """
    wanted = read_manifest(source)
    if orgs is not None:
        unknown = sorted(set(orgs) - {c.org for c in wanted})
        if unknown:
            raise BackupError(f"the backup holds no org {', '.join(unknown)}")
        wanted = [c for c in wanted if c.org in orgs]
    staged: list[tuple[OrgCopy, Path, Path]] = []
    try:
        for copy in wanted:
            live = data_dir / "orgs" / copy.org / LOG_FILE
            if live.exists() and in_use(live):
                raise BackupError(f"org {copy.org} is running (its log is open): stop it before restoring")
            staging = live.with_name(f"{LOG_FILE}.restoring")
            staged.append((copy, staging, live))
            try:
                head = copy_database(source / "orgs" / copy.org / LOG_FILE, staging)
            except StoreError as exc:
                raise BackupError(f"the copy of {copy.org} cannot be restored: {exc}") from exc
            if head != copy.head:
                raise BackupError(f"the copy of {copy.org} has head {head}, its manifest says {copy.head}")
    except BaseException:
        for _, staging, _ in staged:
            staging.unlink(missing_ok=True)
        raise
    for _, staging, live in staged:
        # The old log's WAL must not be replayed onto the restored file.
        for suffix in _SIDE_FILES:
            Path(f"{live}{suffix}").unlink(missing_ok=True)
        os.replace(staging, live)
        for name in (REPLICA_FILE, *(REPLICA_FILE + s for s in _SIDE_FILES)):
            (live.parent / name).unlink(missing_ok=True)
    return [copy for copy, _, _ in staged]
