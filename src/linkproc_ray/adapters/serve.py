"""Ray Serve adapter: the authenticated ingress and the summarizer deployment.

``serve deploy serve_config.yaml`` imports :func:`build_app`; ``linkproc up``
calls it through :mod:`linkproc_ray.adapters.local`. The FastAPI routes live in :mod:`linkproc_ray.api.http`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from linkproc_ray.adapters.actors import RayGateway
from linkproc_ray.api.auth import TokenVerifier
from linkproc_ray.api.http import create_api
from linkproc_ray.config import Settings, load_settings
from linkproc_ray.errors import AIError, ReplicaWornOut
from linkproc_ray.summarize.factory import make_summarizer
from linkproc_ray.summarize.protocol import Summary, SummaryRequest
from linkproc_ray.summarize.vllm import Generation, VLLMSummarizer

log = logging.getLogger(__name__)

MODEL_SUMMARIZERS = frozenset({"vllm", "openai"})
"""Summarizers this app deploys as its own ``Summarizer`` deployment."""

INGRESS_MAX_ONGOING_REQUESTS = 1000
"""Requests one ingress replica works on at once; beyond it they wait in arrival order (in the replica, behind HAProxy).

A request mostly awaits an org's backend, and every WebSocket holds a slot for
its lifetime. At 100, the saves that waited for cold orgs' backends filled the
slots and every other org's saves queued behind them at the proxy: the full
burst accepted 18 saves/s and a live org's save took 22 s at p99; at 1,000,
49 saves/s and 4.5 s (benchmarks/README.md).
"""


@serve.deployment(
    name="Ingress", max_ongoing_requests=INGRESS_MAX_ONGOING_REQUESTS, ray_actor_options={"num_cpus": 0.1}
)
@serve.ingress()
class Ingress:
    """HTTP and WebSocket front door; every route checks the JWT and the org."""

    def __init__(self, summarizer: DeploymentHandle[Any] | None, settings: dict[str, Any]) -> None:
        # A model's summarizer handle is bound only so that one application deploys both.
        del summarizer
        self.settings = Settings(**settings)
        self._gateway = RayGateway(self.settings)

    def __serve_build_asgi_app__(self) -> FastAPI:
        # Built in the replica (not pickled from the driver), so its state
        # holds this replica's gateway and verifier.
        api = create_api()
        api.state.gateway = self._gateway
        api.state.verifier = TokenVerifier(self.settings)
        return api

    def check_health(self) -> None:
        """Serve's periodic probe: a replica that held too many orgs' dead actors asks to be replaced.

        Serve stops an unhealthy replica gracefully (it finishes the requests
        it holds) and starts a fresh one; saves keep being answered, and
        WebSocket clients reconnect to the new replica (tests/integration/
        test_ingress_recycling.py).
        """
        if self._gateway.worn_out():
            raise ReplicaWornOut(
                f"this replica has held handles to {self._gateway.incarnations_held} org backend actors "
                f"(LINKPROC_INGRESS_RECYCLE_AFTER={self.settings.ingress_recycle_after}); "
                "Ray keeps each until the process exits, so Serve replaces it"
            )


@serve.deployment(name="Summarizer", max_ongoing_requests=32, ray_actor_options={"num_cpus": 0.1})
class SummarizerDeployment:
    """One summarizer for every org: requests from all processors share it.

    With ``vllm`` each replica runs one engine that batches all the requests
    it holds (``max_ongoing_requests`` bounds that batch); a replica is ready
    only once its model has loaded, and unhealthy once its engine died, so
    Serve replaces it.
    """

    async def __init__(self, settings: dict[str, Any]) -> None:  # type: ignore[misc]
        self.summarizer = make_summarizer(Settings(**settings))
        self._engine = self.summarizer if isinstance(self.summarizer, VLLMSummarizer) else None
        if self._engine is not None:
            # In the replica's own event loop: the engine's output task lives there.
            await self._engine.start()

    async def summarize(self, request: SummaryRequest) -> Summary:
        return await self.summarizer.summarize(request)

    async def generate(self, request: SummaryRequest) -> Generation:
        """The engine's raw answer, unvalidated: benchmarks/gpu_check.py judges the deployed model by it."""
        if self._engine is None:
            raise AIError("only the vllm summarizer has raw answers to show")
        return await self._engine.generate(request)

    async def check_health(self) -> None:
        """Serve's periodic probe; raising marks the replica unhealthy."""
        if self._engine is not None:
            await self._engine.check_health()

    def __del__(self) -> None:
        # Serve calls this on graceful shutdown: the engine's worker
        # processes must not outlive the replica.
        if self._engine is not None:
            self._engine.shutdown()


def build_app(args: dict[str, Any] | None = None) -> Application:
    """The Serve application; ``args`` override ``LINKPROC_*`` settings (e.g. from serve_config.yaml)."""
    settings = load_settings(**(args or {}))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    TokenVerifier(settings)  # a bad key or secret fails here, at deploy time, naming the setting
    plain = settings.to_actor_args()
    # Only a model needs a Summarizer deployment: the extractive summarizer runs in the
    # processors' batch tasks, and "serve" names a deployment the operator runs.
    model = SummarizerDeployment.bind(plain) if settings.summarizer in MODEL_SUMMARIZERS else None  # type: ignore[attr-defined]
    # serve.deployment turns each class into a Deployment; mypy only sees the class.
    app: Application = Ingress.bind(model, plain)  # type: ignore[attr-defined]
    return app
