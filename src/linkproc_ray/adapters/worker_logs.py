"""The files a Ray worker process leaves in its node's log directory, and their removal on hibernation.

Each worker process writes its core worker's log
(``python-core-worker-<worker id>_<pid>.log``) and an event file
(``events/event_CORE_WORKER_<pid>.log``) into the session's log directory,
and Ray never removes them. Ray's log monitor and its agent's event module
list that directory every second or so, so with two new worker processes per
wake their CPU grows with every wake the node has seen: ``benchmarks/churn.py``
measured the agent going from 5 % to over 10 % of a core within 700 wakes,
with no sign of levelling off. (Ray's log monitor already moves a dead
worker's stdout and stderr files to ``old/`` for the same reason.)

A hibernating org actor exits on purpose and leaves nothing to debug, so it
removes its own two files just before it exits. An actor that crashes or is
killed keeps its files.
"""

from __future__ import annotations

import os
from pathlib import Path

import ray


def own_log_files() -> list[Path]:
    """This worker process's core worker log and event file, where they exist (none outside a Ray worker)."""
    node = ray._private.worker.global_worker.node
    if node is None:
        return []
    logs = Path(node.get_logs_dir_path())
    worker_id = ray.get_runtime_context().get_worker_id()
    pid = os.getpid()
    candidates = [
        logs / f"python-core-worker-{worker_id}_{pid}.log",
        logs / "events" / f"event_CORE_WORKER_{pid}.log",
    ]
    return [path for path in candidates if path.exists()]


def remove_own_log_files() -> list[Path]:
    """Remove :func:`own_log_files`: what is still written to them goes to the unlinked files, then is gone."""
    removed = []
    for path in own_log_files():
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed
