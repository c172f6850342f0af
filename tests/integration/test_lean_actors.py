"""Org actors load only what they use: a heavy import added by accident fails here, not in a memory graph.

Parsing (lxml, BeautifulSoup, trafilatura) and the extractive summary run in
batch tasks; a model's Serve client is loaded only by processors that call
one; the backend needs neither fetching nor the web stack.
"""

from __future__ import annotations

import ray
from tests.integration.conftest import wait_for
from tests.pages import article_ids

from linkproc_ray.adapters.actors import backend_name, processor_name
from linkproc_ray.config import NAMESPACE

PARSERS = {"bs4", "lxml", "trafilatura", "justext", "htmldate", "courlan", "lxml_html_clean"}
MODELS = {"vllm", "torch", "transformers", "tokenizers"}
SERVE_CLIENT_AND_WEB = {"fastapi", "uvicorn", "websockets"}
FETCHING = {"httpx", "httpcore", "h11"}


def loaded(name: str) -> set[str]:
    return set(ray.get(ray.get_actor(name, namespace=NAMESPACE).loaded_modules.remote()))


def test_an_org_that_processed_a_link_loaded_no_parser_model_or_web_stack(api, page_server, org):
    link = api.post("/links", json={"url": page_server.article_url(article_ids()[3])}).json()
    done = wait_for(lambda: api.get(f"/links/{link['id']}").json()["summary"])
    assert done  # parsed and summarized, so every step the processor takes has run
    processor, backend = loaded(processor_name(org)), loaded(backend_name(org))
    assert processor & (PARSERS | MODELS | SERVE_CLIENT_AND_WEB) == set()
    assert backend & (PARSERS | MODELS | SERVE_CLIENT_AND_WEB | FETCHING) == set()
    assert "linkproc_ray" in processor and "linkproc_ray" in backend  # the check looked at the right processes
