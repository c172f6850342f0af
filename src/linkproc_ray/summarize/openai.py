"""Summaries from any OpenAI-compatible chat-completions endpoint (vLLM's server included).

The model is asked for schema-constrained JSON, and its answer is still checked
by ``validate_output``; every failure leaves here as a typed ``AIError``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from linkproc_ray.errors import AIError, AIInvalidOutput, AITimeout
from linkproc_ray.summarize.prompt import build_messages
from linkproc_ray.summarize.protocol import Summary, SummaryRequest
from linkproc_ray.summarize.rules import MAX_ANSWER_TOKENS, STRICT_SUMMARY_SCHEMA, validate_output

TEMPERATURE = 0.2


@contextmanager
def _map_httpx_errors(model: str, timeout: float) -> Iterator[None]:
    """Turn httpx's and asyncio's failures into ``AITimeout`` / ``AIError``."""
    try:
        yield
    except (httpx.TimeoutException, TimeoutError) as exc:
        raise AITimeout(f"{model} gave no answer in {timeout:g} s") from exc
    except httpx.HTTPStatusError as exc:
        raise AIError(f"{model} endpoint answered HTTP {exc.response.status_code}") from exc
    except httpx.HTTPError as exc:
        raise AIError(f"{model} endpoint failed: {type(exc).__name__}: {exc}") from exc


def _content(body: Any) -> str:
    """The first choice's message content of a chat-completions response body."""
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise AIInvalidOutput("response has no choices[0].message.content") from exc
    if not isinstance(content, str):
        # A refusal comes back as content null plus a "refusal" field.
        raise AIInvalidOutput("response message content is not text (refusal or tool call)")
    return content


class OpenAISummarizer:
    """``Summarizer`` over ``POST {base_url}/chat/completions`` with a JSON-schema response format.

    Timeouts (``timeout`` seconds for the whole call) raise ``AITimeout``,
    HTTP and transport errors ``AIError``, an answer that is not a valid
    ``{summary, tags}`` ``AIInvalidOutput``. ``Summary.model`` is ``model``.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owns_client = http_client is None
        self._client = http_client if http_client is not None else httpx.AsyncClient()

    async def aclose(self) -> None:
        """Close the HTTP client if this summarizer created it."""
        if self._owns_client:
            await self._client.aclose()

    def payload(self, request: SummaryRequest) -> dict[str, Any]:
        """The chat-completions request body for ``request``."""
        return {
            "model": self.model,
            "messages": build_messages(request),
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "link_summary", "schema": STRICT_SUMMARY_SCHEMA, "strict": True},
            },
            "temperature": TEMPERATURE,
            "max_tokens": MAX_ANSWER_TOKENS,
        }

    async def summarize(self, request: SummaryRequest) -> Summary:
        """A validated summary from the endpoint, or a typed ``AIError``."""
        with _map_httpx_errors(self.model, self.timeout):
            # httpx's timeout bounds each phase; asyncio's bounds the whole
            # call, so a server trickling bytes cannot hold it forever.
            async with asyncio.timeout(self.timeout):
                response = await self._client.post(
                    self.url,
                    json=self.payload(request),
                    headers=self._headers,
                    timeout=self.timeout,
                )
                response.raise_for_status()
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AIInvalidOutput("endpoint answered with a body that is not JSON") from exc
        return validate_output(_content(body), request, self.model)
