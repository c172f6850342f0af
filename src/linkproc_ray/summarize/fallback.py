"""A model summarizer with a safety net: any AI failure (a timeout included) falls back to another summarizer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from linkproc_ray.errors import AIError, AITimeout
from linkproc_ray.summarize.extractive import ExtractiveSummarizer
from linkproc_ray.summarize.protocol import Summarizer, Summary, SummaryRequest


class FallbackSummarizer:
    """Summarizes with ``primary``; on any ``AIError`` (a timeout included) uses ``fallback``.

    The primary gets ``timeout`` seconds, after which it counts as ``ai:timeout``.
    Each fallback bumps ``fallbacks`` and calls ``on_fallback`` with the error code.
    Errors of the fallback itself propagate.
    """

    def __init__(
        self,
        primary: Summarizer,
        fallback: Summarizer | None = None,
        *,
        timeout: float = 30.0,
        on_fallback: Callable[[str], None] | None = None,
    ) -> None:
        if fallback is None:
            fallback = ExtractiveSummarizer()
        self.primary = primary
        self.fallback = fallback
        self.timeout = timeout
        self.on_fallback = on_fallback
        self.fallbacks = 0
        self.model = primary.model

    async def summarize(self, request: SummaryRequest) -> Summary:
        """A summary from the primary, or from the fallback if the primary failed."""
        try:
            try:
                async with asyncio.timeout(self.timeout):
                    return await self.primary.summarize(request)
            except TimeoutError as exc:
                raise AITimeout(f"{self.primary.model} gave no summary in {self.timeout:g} s") from exc
        except AIError as exc:
            self.fallbacks += 1
            if self.on_fallback is not None:
                self.on_fallback(exc.code)
        return await self.fallback.summarize(request)
