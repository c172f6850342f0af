"""Ray Serve adapter: the authenticated ingress and the summarizer deployment.

``serve deploy serve_config.yaml`` imports :func:`build_app`; ``linkproc up``
calls it directly. The FastAPI routes live in :mod:`linkproc_ray.http_api`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from .actors import RayGateway
from .auth import TokenVerifier
from .config import Settings, load_settings
from .http_api import create_api
from .pipeline.extractive import ExtractiveSummarizer
from .pipeline.summarize import Summarizer, Summary, SummaryRequest

log = logging.getLogger(__name__)

@serve.deployment(name="Ingress", max_ongoing_requests=100, ray_actor_options={"num_cpus": 0.1})
@serve.ingress()
class Ingress:
    """HTTP and WebSocket front door; every route checks the JWT and the org."""

    def __init__(self, summarizer: DeploymentHandle, settings: dict[str, Any]) -> None:
        # The summarizer handle is bound only so that one application deploys both.
        del summarizer
        self.settings = Settings(**settings)

    def __serve_build_asgi_app__(self) -> FastAPI:
        # Built in the replica (not pickled from the driver), so its state
        # holds this replica's gateway and verifier.
        api = create_api()
        api.state.gateway = RayGateway(self.settings)
        api.state.verifier = TokenVerifier(self.settings)
        return api


def make_summarizer(settings: Settings) -> Summarizer:
    """The summarizer the deployment serves, chosen by ``LINKPROC_SUMMARIZER``."""
    if settings.summarizer == "extractive":
        return ExtractiveSummarizer()
    raise NotImplementedError(f"summarizer {settings.summarizer!r} is not available yet")


@serve.deployment(name="Summarizer", max_ongoing_requests=32, ray_actor_options={"num_cpus": 0.1})
class SummarizerDeployment:
    """One summarizer for every org: requests from all processors share it."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.summarizer = make_summarizer(Settings(**settings))

    async def summarize(self, request: SummaryRequest) -> Summary:
        return await self.summarizer.summarize(request)


def build_app(args: dict[str, Any] | None = None) -> Application:
    """The Serve application; ``args`` override ``LINKPROC_*`` settings (e.g. from serve_config.yaml)."""
    settings = load_settings(**(args or {}))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    plain = settings.to_actor_args()
    return Ingress.bind(SummarizerDeployment.bind(plain), plain)
