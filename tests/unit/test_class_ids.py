"""An org actor class has the same id in every process, and a new one for new code (adapters/class_ids.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from linkproc_ray.adapters.class_ids import code_version

PRINT_IDS = textwrap.dedent(
    """
    from linkproc_ray.adapters.actors import LinkProcessorActor, SyncBackendActor
    for actor_class in (LinkProcessorActor, SyncBackendActor):
        print(actor_class.__ray_metadata__.actor_creation_function_descriptor.function_id.hex())
    """
)


def ids_in_a_new_process() -> list[str]:
    done = subprocess.run([sys.executable, "-c", PRINT_IDS], capture_output=True, text=True, check=True, timeout=120)
    return done.stdout.split()


def test_two_processes_give_each_org_actor_class_the_same_id() -> None:
    first, second = ids_in_a_new_process(), ids_in_a_new_process()
    assert first == second
    assert len(set(first)) == 2  # the backend's and the processor's differ


def test_changed_source_changes_the_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "versioned_actor.py"
    monkeypatch.syspath_prepend(str(tmp_path))
    module.write_text("VALUE = 1\n")
    import versioned_actor

    before = code_version("versioned_actor")
    module.write_text("VALUE = 2\n")
    assert code_version("versioned_actor") != before
    assert versioned_actor.VALUE == 1  # the version reads the file; nothing was re-imported
    del sys.modules["versioned_actor"]
