"""The whole loop on a real local Ray cluster: save a link, watch it processed exactly once."""

from __future__ import annotations

import time

import httpx
import jwt
import ray
from tests.integration.conftest import JWT_SECRET, log_of, outcome_counts, wait_for
from tests.pages import article_ids, load_article

from linkproc_ray.adapters.actors import processor_name
from linkproc_ray.config import NAMESPACE


def processed(api: httpx.Client, link_id: str) -> dict | None:
    link = api.get(f"/links/{link_id}").json()
    return link if link["processing"]["status"] in {"completed", "failed"} else None


def test_one_link_gets_metadata_and_summary_and_a_second_client_pulls_them(
    api, page_server, serve_url, make_token, org
):
    page_id = article_ids()[0]
    created = api.post("/links", json={"url": page_server.article_url(page_id)})
    assert created.status_code == 201
    link = wait_for(lambda: processed(api, created.json()["id"]))
    assert link["processing"]["status"] == "completed"
    assert link["metadata"]["title"]
    assert link["summary"]["text"]

    other = httpx.Client(
        base_url=f"{serve_url}/v1/orgs/{org}", headers={"Authorization": f"Bearer {make_token(org, sub='other-user')}"}
    )
    names = [e["name"] for e in log_of(other)]
    assert "v1.LinkMetadataFetched" in names and "v1.LinkSummarized" in names
    assert outcome_counts(other, link["id"]) == {"started": 1, "resumed": 0, "terminal": 1}


def test_killed_processor_comes_back_from_its_files_and_processes_a_new_link(api, page_server, org):
    first = api.post("/links", json={"url": page_server.article_url(article_ids()[1])}).json()
    wait_for(lambda: processed(api, first["id"]))
    processor = ray.get_actor(processor_name(org), namespace=NAMESPACE)
    ray.kill(processor, no_restart=False)

    second = api.post("/links", json={"url": page_server.article_url(article_ids()[2])}).json()
    done = wait_for(lambda: processed(api, second["id"]))
    assert done["processing"]["status"] == "completed"
    for link_id in (first["id"], second["id"]):
        assert outcome_counts(api, link_id) == {"started": 1, "resumed": 0, "terminal": 1}


def test_two_links_back_to_back_each_get_one_started_and_one_terminal(api, page_server):
    urls = [page_server.article_url(page) for page in article_ids()[3:5]]
    ids = [api.post("/links", json={"url": url}).json()["id"] for url in urls]
    for link_id in ids:
        wait_for(lambda link_id=link_id: processed(api, link_id))
    for link_id in ids:
        assert outcome_counts(api, link_id) == {"started": 1, "resumed": 0, "terminal": 1}


def test_title_of_the_served_page_reaches_the_link(api, page_server):
    page_id = article_ids()[5]
    html, _, _ = load_article(page_id)
    link = api.post("/links", json={"url": page_server.article_url(page_id)}).json()
    done = wait_for(lambda: processed(api, link["id"]))
    assert done["metadata"]["title"].split()[0] in html


def test_auth_errors_over_real_http(serve_url, make_token, org):
    url = f"{serve_url}/v1/orgs/{org}/links"
    assert httpx.get(url).status_code == 401
    forged = jwt.encode({"sub": "u", "orgId": org, "exp": time.time() + 60}, "not-the-secret-but-long-enough-000000")
    assert httpx.get(url, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    expired = jwt.encode({"sub": "u", "orgId": org, "exp": int(time.time()) - 5}, JWT_SECRET)
    response = httpx.get(url, headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert httpx.get(url, headers={"Authorization": f"Bearer {make_token('someone-else')}"}).status_code == 403


def test_stale_parent_is_409_and_unknown_event_is_422_over_real_http(api):
    event = {
        "id": "e-1",
        "name": "v1.TagCreated",
        "args": {"id": "t1", "name": "x", "createdAt": "t"},
        "clientId": "c",
        "sessionId": "s",
    }
    assert api.post("/events", json={"parent": 0, "events": [event]}).status_code == 200
    stale = api.post("/events", json={"parent": 0, "events": [{**event, "id": "e-2"}]})
    assert stale.status_code == 409
    assert stale.json() == {**stale.json(), "error": "server_ahead", "head": 1}
    unknown = api.post("/events", json={"parent": 1, "events": [{**event, "id": "e-3", "name": "v1.Nope"}]})
    assert unknown.status_code == 422
    assert unknown.json()["event"] == "v1.Nope"
