"""One id per actor class and code version, the same in every process, so the GCS stores each class once.

Ray names an actor class by a random id in each process that imports it,
and the first time a process creates an actor of the class it stores the
pickled class in the GCS under that id, for as long as the job lives. A
backend creates its org's processor when it pokes it after a wake, so every
wake stored the processor's class again (19.6 KB): in ``benchmarks/churn.py``
the GCS's function table went from 6 to 245 entries, 0.2 to 4.9 MB, over
300 wakes, the growth the GCS's RSS showed. With an id derived from the
class's module source and Ray's version, every process writes the same entry.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any, TypeVar

import ray
from ray._raylet import PythonFunctionDescriptor  # type: ignore[attr-defined]

ActorClass = TypeVar("ActorClass")


def code_version(module_name: str) -> str:
    """A hash of the module's source and Ray's version: a new deployment of either gets new ids."""
    source = Path(sys.modules[module_name].__file__ or "").read_bytes()
    return hashlib.sha256(source + ray.__version__.encode()).hexdigest()[:32]


def stable_class_id(actor_class: ActorClass) -> ActorClass:
    """Give a ``@ray.remote`` class the same creation descriptor in every process (see the module's docstring)."""
    meta: Any = actor_class.__ray_metadata__  # type: ignore[attr-defined]
    per_process = meta.actor_creation_function_descriptor
    meta.actor_creation_function_descriptor = PythonFunctionDescriptor(
        per_process.module_name,
        per_process.function_name,
        per_process.class_name,
        code_version(per_process.module_name),
    )
    return actor_class
