"""Summary speed and quality: extractive vs vLLM-CPU (SmolLM2-135M-Instruct) over the article pages in tests/data/articles.

Each page's ground-truth article body is the text; reports summaries/s, generated
tokens/s, p50/p99 latency, schema-valid and rule-valid shares, and grounding.

    python benchmarks/summarize.py --quick     # 6 pages, under 5 minutes here with model load
    python benchmarks/summarize.py             # all pages
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import jsonschema
from tqdm import tqdm

from linkproc_ray.errors import AIError
from linkproc_ray.summarize.extractive import ExtractiveSummarizer
from linkproc_ray.summarize.model_folders import prepare_smollm2
from linkproc_ray.summarize.protocol import SummaryRequest
from linkproc_ray.summarize.rules import SUMMARY_SCHEMA, validate_output
from linkproc_ray.summarize.vllm import Generation, VLLMOptions, VLLMSummarizer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "summarize.json"
TABLE = RESULTS.with_suffix(".md")
SMOLLM2_NAME = "SmolLM2-135M-Instruct"
_WORD = re.compile(r"\w+")
_DIGITS = re.compile(r"\d+")


def articles_dir() -> Path:
    return Path(os.environ.get("LINKPROC_ARTICLES_DIR") or ROOT / "tests" / "data" / "articles")


def load_requests(limit: int | None) -> list[SummaryRequest]:
    """One request per dataset page, text = ground-truth article body, in page-id order."""
    truth: dict[str, dict[str, str]] = json.loads((articles_dir() / "ground-truth.json").read_text("utf-8"))
    ids = sorted(truth)[:limit]
    return [
        SummaryRequest(url=truth[i]["url"], title=None, description=None, text=truth[i]["articleBody"]) for i in ids
    ]


def grounding(summary: str, text: str) -> float:
    """Share of the summary's words (``\\w+``, case-folded) that occur in the page text."""
    words = [w.casefold() for w in _WORD.findall(summary)]
    page = {w.casefold() for w in _WORD.findall(text)}
    return sum(w in page for w in words) / len(words) if words else 0.0


_SCHEMA = jsonschema.Draft202012Validator(SUMMARY_SCHEMA)


def schema_valid(generation: Generation) -> bool:
    """The raw answer ended by itself and is JSON that :data:`SUMMARY_SCHEMA` (bounds included) accepts."""
    if generation.finish_reason == "length":
        return False
    try:
        answer = json.loads(generation.text)
    except json.JSONDecodeError:
        return False
    return _SCHEMA.is_valid(answer)


@dataclass(frozen=True)
class Outcome:
    latency: float
    schema_valid: bool
    summary: str | None  # None when the rules rejected the answer
    output_tokens: int | None
    rejected: str | None = None  # the rule that refused it, digits folded ("summary has N sentences")


@dataclass(frozen=True)
class Result:
    summarizer: str
    model: str
    pages: int
    concurrency: int
    load_s: float
    wall_s: float
    summaries_per_s: float
    tokens_per_s: float | None
    p50_latency_s: float
    p99_latency_s: float
    schema_valid: float
    rules_valid: float
    grounding: float
    rejections: dict[str, int]
    examples: list[str]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_all(
    name: str,
    model: str,
    requests: list[SummaryRequest],
    one: Callable[[SummaryRequest], Awaitable[Outcome]],
    *,
    concurrency: int,
    load_s: float,
) -> Result:
    """Run ``one`` over every request, ``concurrency`` at a time, and aggregate."""
    lane = asyncio.Semaphore(concurrency)
    progress = tqdm(total=len(requests), desc=name, unit="page")

    async def timed(request: SummaryRequest) -> Outcome:
        async with lane:
            outcome = await one(request)
        progress.update()
        return outcome

    start = time.perf_counter()
    outcomes = await asyncio.gather(*(timed(r) for r in requests))
    wall = time.perf_counter() - start
    progress.close()
    kept = [(o, r) for o, r in zip(outcomes, requests, strict=False) if o.summary is not None]
    tokens = [o.output_tokens for o in outcomes if o.output_tokens is not None]
    return Result(
        summarizer=name,
        model=model,
        pages=len(requests),
        concurrency=concurrency,
        load_s=round(load_s, 1),
        wall_s=round(wall, 1),
        summaries_per_s=round(len(requests) / wall, 3),
        tokens_per_s=round(sum(tokens) / wall, 1) if tokens else None,
        p50_latency_s=round(_percentile([o.latency for o in outcomes], 0.5), 3),
        p99_latency_s=round(_percentile([o.latency for o in outcomes], 0.99), 3),
        schema_valid=round(sum(o.schema_valid for o in outcomes) / len(outcomes), 3),
        rules_valid=round(len(kept) / len(outcomes), 3),
        grounding=round(statistics.fmean(grounding(o.summary or "", r.text) for o, r in kept), 3) if kept else 0.0,
        rejections=dict(Counter(o.rejected for o in outcomes if o.rejected).most_common()),
        examples=[o.summary or "" for o, _ in kept[:3]],
    )


async def judged(
    generate: Callable[[SummaryRequest], Awaitable[Generation]], request: SummaryRequest, model: str
) -> Outcome:
    """One raw answer timed, then judged by the schema and by the rules every summarizer applies."""
    began = time.perf_counter()
    try:
        generation = await generate(request)
    except AIError:
        return Outcome(time.perf_counter() - began, False, None, None)
    latency = time.perf_counter() - began
    try:
        summary = validate_output(generation.text, request, model).summary
    except AIError as exc:
        return Outcome(latency, schema_valid(generation), None, generation.output_tokens, _DIGITS.sub("N", str(exc)))
    return Outcome(latency, schema_valid(generation), summary, generation.output_tokens)


async def bench_extractive(requests: list[SummaryRequest]) -> Result:
    summarizer = ExtractiveSummarizer()

    async def one(request: SummaryRequest) -> Outcome:
        start = time.perf_counter()
        try:
            summary: str | None = (await summarizer.summarize(request)).summary
        except AIError:
            summary = None
        # Extractive output is built as {summary, tags}: schema-valid by construction.
        return Outcome(time.perf_counter() - start, True, summary, None)

    return await run_all("extractive", summarizer.model, requests, one, concurrency=1, load_s=0.0)


async def bench_vllm(requests: list[SummaryRequest], model_dir: Path, concurrency: int) -> Result:
    start = time.perf_counter()
    summarizer = VLLMSummarizer(
        VLLMOptions(
            str(prepare_smollm2(model_dir)),
            name=SMOLLM2_NAME,
            dtype="float32",  # bf16 is about 3.5x slower on this AVX2 CPU
            max_model_len=8192,
            kv_cache_gib=1,
            enforce_eager=True,
        )
    )
    await summarizer.start()
    load_s = time.perf_counter() - start

    async def one(request: SummaryRequest) -> Outcome:
        return await judged(summarizer.generate, request, summarizer.model)

    try:
        return await run_all("vllm-cpu", summarizer.model, requests, one, concurrency=concurrency, load_s=load_s)
    finally:
        summarizer.shutdown()


def table(results: list[Result]) -> str:
    head = (
        "| summarizer | model | pages | conc. | load s | summaries/s | tokens/s | p50 s | p99 s "
        "| schema-valid | rule-valid | grounding |\n|" + "---|" * 12
    )
    rows = [
        f"| {r.summarizer} | {r.model} | {r.pages} | {r.concurrency} | {r.load_s} | {r.summaries_per_s} "
        f"| {r.tokens_per_s if r.tokens_per_s is not None else 'n/a'} | {r.p50_latency_s} | {r.p99_latency_s} "
        f"| {r.schema_valid:.0%} | {r.rules_valid:.0%} | {r.grounding:.0%} |"
        for r in results
    ]
    return "\n".join([head, *rows])


async def run(args: argparse.Namespace) -> None:
    requests = load_requests(args.pages or (6 if args.quick else None))
    results = [await bench_extractive(requests)]
    if not args.skip_vllm:
        results.append(await bench_vllm(requests, args.model_dir, args.concurrency))
    report = {
        "mode": "quick" if args.quick else "full",
        "machine": f"{os.cpu_count()} CPUs",
        "results": [asdict(r) for r in results],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    markdown = table(results)
    TABLE.write_text(markdown + "\n")
    print(f"\n{markdown}\n\nwritten to {RESULTS} and {TABLE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="6 pages (under 5 minutes here, model load included)")
    parser.add_argument("--pages", type=int, help="this many pages instead")
    parser.add_argument("--concurrency", type=int, default=8, help="vLLM requests in flight (one engine batches them)")
    parser.add_argument(
        "--model-dir", type=Path, default=ROOT / ".models" / "smollm2", help="SmolLM2 folder; prepared if missing"
    )
    parser.add_argument("--skip-vllm", action="store_true", help="extractive only (no vllm-cpu installed)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
