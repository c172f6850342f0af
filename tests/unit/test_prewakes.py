"""Waking an org's processor alongside its backend while few orgs wake (adapters/actors.py ``Prewakes``)."""

from __future__ import annotations

from contextlib import ExitStack

from linkproc_ray.adapters.actors import Prewakes


def test_a_lone_waking_save_wakes_the_processor_and_counts_while_it_lasts() -> None:
    woken: list[str] = []
    prewakes = Prewakes(woken.append, below=1)
    with prewakes.alongside("acme"):
        assert woken == ["acme"]
        assert prewakes.waking == 1
    assert prewakes.waking == 0


def test_when_many_orgs_wake_at_once_only_the_first_ones_wake_their_processors() -> None:
    woken: list[str] = []
    prewakes = Prewakes(woken.append, below=2)
    orgs = [f"org-{n}" for n in range(5)]
    with ExitStack() as saves:
        for org in orgs:
            saves.enter_context(prewakes.alongside(org))
        assert woken == orgs[:2]  # the other backends start first; their pokes wake their processors
        assert prewakes.waking == 5
    with prewakes.alongside("later"):  # the storm is over: a lone wake again
        assert woken[-1] == "later"


def test_zero_never_wakes_a_processor_early() -> None:
    woken: list[str] = []
    with Prewakes(woken.append, below=0).alongside("acme"):
        assert woken == []


def test_a_wake_that_fails_does_not_fail_the_save() -> None:
    def unreachable(org: str) -> None:
        raise ConnectionError(f"no GCS for {org}")

    prewakes = Prewakes(unreachable, below=1)
    with prewakes.alongside("acme"):
        assert prewakes.waking == 1
    assert prewakes.waking == 0
