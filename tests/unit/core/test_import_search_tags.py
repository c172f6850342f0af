"""Bringing bookmarks in and taking them out, finding links again, and tags a person controls, over the HTTP app."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from linkproc_ray.api.auth import TokenVerifier, issue_token
from linkproc_ray.api.gateway import LocalGateway
from linkproc_ray.api.http import create_api
from linkproc_ray.config import Settings
from linkproc_ray.core import events as ev
from linkproc_ray.core.bookmarks import read_bookmarks

SECRET = "test-secret-that-is-long-enough-for-hs256"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, jwt_secret=SECRET)


@pytest.fixture
def gateway(tmp_path) -> LocalGateway:
    return LocalGateway(tmp_path)


@pytest.fixture
def client(settings, gateway):
    api = create_api()
    api.state.gateway = gateway
    api.state.verifier = TokenVerifier(settings)
    with TestClient(api) as test_client:
        test_client.headers["Authorization"] = f"Bearer {issue_token(settings, 'acme')}"
        yield test_client
        test_client.portal.call(gateway.close)


def import_links(client, *entries, org: str = "acme", **body):
    response = client.post(f"/v1/orgs/{org}/links:batch", json={"links": list(entries), **body})
    assert response.status_code == 200, response.text
    return response.json()


def enrich(client, gateway, link_id: str, *, title=None, description=None, summary=None, site=None):
    """What the processor would write for a link, committed straight to the org's backend."""
    made: list[ev.EventArgs] = [
        ev.LinkMetadataFetched(
            id=f"m-{link_id}", linkId=link_id, title=title, description=description, siteName=site, fetchedAt="t"
        )
    ]
    if summary is not None:
        made.append(ev.LinkSummarized(id=f"s-{link_id}", linkId=link_id, summary=summary, model="m", summarizedAt="t"))

    async def commit() -> None:
        await (await gateway.backend("acme")).append(made)

    client.portal.call(commit)


# -- import ---------------------------------------------------------------------


def test_each_entry_gets_its_own_outcome_in_the_order_given(client):
    answer = import_links(
        client,
        {"url": "https://a.example/one", "tags": ["Reading"]},
        "https://b.example/two",
        {"url": "javascript:alert(1)"},
        {"url": "file:///etc/passwd"},
        {"url": "HTTPS://A.example/one#part"},
        {"url": 42},
        {"url": "https://c.example/", "tags": "not-a-list"},
    )
    results = answer["results"]
    assert [r["outcome"] for r in results] == [
        "created",
        "created",
        "invalid",
        "invalid",
        "duplicate",
        "invalid",
        "invalid",
    ]
    assert [r["index"] for r in results] == list(range(7))
    assert results[4]["id"] == results[0]["id"] and results[4]["url"] == "https://a.example/one"
    assert results[2]["reason"] == "only absolute http and https URLs are accepted"
    assert results[5]["reason"] == "url must be a string"
    assert results[6]["reason"] == "tags must be a list of strings"
    assert answer["counts"] == {"created": 2, "exists": 0, "duplicate": 1, "invalid": 4}
    link = client.get(f"/v1/orgs/acme/links/{results[0]['id']}").json()
    assert link["tags"] == ["Reading"] and link["source"] is None


def test_importing_the_same_links_twice_creates_nothing_the_second_time(client):
    entries = [{"url": f"https://a.example/{i}", "tags": ["x", "y"]} for i in range(50)]
    first = import_links(client, *entries, source="import")
    second = import_links(client, *entries, source="import")
    assert first["counts"]["created"] == 50
    assert second["counts"] == {"created": 0, "exists": 50, "duplicate": 0, "invalid": 0}
    assert [r["id"] for r in second["results"]] == [r["id"] for r in first["results"]]
    head = client.get("/v1/orgs/acme/events?limit=1").json()["head"]
    import_links(client, *entries)
    assert client.get("/v1/orgs/acme/events?limit=1").json()["head"] == head  # not one event more


def test_an_existing_link_gains_the_tags_it_lacks(client):
    created = import_links(client, {"url": "https://a.example/", "tags": ["one"]})["results"][0]
    import_links(client, {"url": "https://a.example/", "tags": ["one", "two"]})
    assert client.get(f"/v1/orgs/acme/links/{created['id']}").json()["tags"] == ["one", "two"]


def test_tags_of_the_org_are_reused_not_created_twice(client):
    import_links(
        client, {"url": "https://a.example/", "tags": ["news"]}, {"url": "https://b.example/", "tags": ["news"]}
    )
    events = client.get("/v1/orgs/acme/events").json()["events"]
    assert [e["name"] for e in events].count("v1.TagCreated") == 1


def test_a_thousand_links_fit_one_request_and_more_are_refused_whole(client):
    answer = import_links(client, *[f"https://many.example/{i}" for i in range(1000)])
    assert answer["counts"]["created"] == 1000
    response = client.post("/v1/orgs/acme/links:batch", json={"links": ["https://x.example/"] * 1001})
    assert response.status_code == 413 and response.json()["error"] == "too_large"


@pytest.mark.parametrize("body", [[], {"urls": []}, {"links": "https://a.example/"}, {"links": [], "source": 7}])
def test_a_body_that_is_not_an_import_is_400_and_saves_nothing(client, body):
    response = client.post("/v1/orgs/acme/links:batch", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request" and response.json()["field"] == "body"
    assert client.get("/v1/orgs/acme/links").json()["links"] == []


def test_a_body_that_is_not_json_is_400(client):
    response = client.post("/v1/orgs/acme/links:batch", content=b"<html>")
    assert response.status_code == 400


# -- search ---------------------------------------------------------------------


def search(client, q: str) -> list[dict]:
    response = client.get("/v1/orgs/acme/links", params={"q": q})
    assert response.status_code == 200, response.text
    return response.json()["links"]


@pytest.fixture
def saved(client, gateway) -> dict[str, str]:
    """Links in several languages, enriched as the processor would."""
    answer = import_links(
        client,
        {"url": "https://blog.example/rust-async-guide", "tags": ["programming"]},
        {"url": "https://cafe.example/paris"},
        {"url": "https://jp.example/tower"},
        {"url": "https://news.example/"},
    )
    ids = [r["id"] for r in answer["results"]]
    enrich(client, gateway, ids[0], title="A guide", summary="Futures, executors and pinning explained.")
    enrich(client, gateway, ids[1], title="Le Café de Flore", description="Un café célèbre à Paris.")
    enrich(client, gateway, ids[2], title="東京タワーの歴史", summary="東京タワーは1958年に完成した電波塔です。")
    enrich(client, gateway, ids[3], title="Daily news", summary="Nothing about rust here.", site="Daily")
    return {"rust": ids[0], "cafe": ids[1], "tokyo": ids[2], "news": ids[3]}


def test_a_word_inside_a_url_finds_the_link(client, saved):
    assert [link["id"] for link in search(client, "async")] == [saved["rust"]]


def test_accents_fold_both_ways(client, saved):
    assert [link["id"] for link in search(client, "cafe")] == [saved["cafe"]]
    assert [link["id"] for link in search(client, "célèbre")] == [saved["cafe"]]


def test_cjk_words_are_found_inside_unbroken_text(client, saved):
    hits = search(client, "東京")
    assert [link["id"] for link in hits] == [saved["tokyo"]]
    snippet = hits[0]["search"]["snippet"]
    assert " " not in snippet["text"]  # the index's spacing between characters does not show
    assert [snippet["text"][a:b] for a, b in snippet["marks"]] == ["東京"]


def test_a_title_match_ranks_before_a_summary_match(client, saved, gateway):
    enrich(client, gateway, saved["news"], title="Rust weekly", summary="Nothing here.")
    ids = [link["id"] for link in search(client, "rust")]
    assert ids[0] == saved["news"] and saved["rust"] in ids


def test_the_snippet_marks_the_matching_words(client, saved):
    (hit,) = search(client, "pinning")
    snippet = hit["search"]["snippet"]
    assert [snippet["text"][a:b] for a, b in snippet["marks"]] == ["pinning"]


def test_the_last_word_may_be_the_start_of_one(client, saved):
    assert [link["id"] for link in search(client, "execut")] == [saved["rust"]]


def test_tags_are_searched_and_a_removed_tag_is_not(client, saved):
    assert [link["id"] for link in search(client, "programming")] == [saved["rust"]]
    client.delete(f"/v1/orgs/acme/links/{saved['rust']}/tags/programming")
    assert search(client, "programming") == []


def test_a_deleted_link_is_not_found(client, saved):
    client.delete(f"/v1/orgs/acme/links/{saved['cafe']}")
    assert search(client, "cafe") == []


@pytest.mark.parametrize("q", ['"', 'rust "', "NEAR(", "-", "a OR", "*", "col:x", "rust -", "^", "(((", "AND"])
def test_fts_syntax_in_a_query_is_only_text(client, saved, q):
    response = client.get("/v1/orgs/acme/links", params={"q": q})
    assert response.status_code == 200


def test_search_pages_by_rank(client):
    import_links(client, *[f"https://page.example/item-{i}" for i in range(5)])
    first = client.get("/v1/orgs/acme/links", params={"q": "item", "limit": 3}).json()
    rest = client.get("/v1/orgs/acme/links", params={"q": "item", "limit": 3, "cursor": first["next_cursor"]}).json()
    assert len(first["links"]) == 3 and len(rest["links"]) == 2 and rest["next_cursor"] is None
    assert {link["id"] for link in first["links"]}.isdisjoint(link["id"] for link in rest["links"])


# -- tags -----------------------------------------------------------------------


@pytest.fixture
def suggested(client, gateway) -> str:
    link_id = import_links(client, "https://t.example/")["results"][0]["id"]

    async def suggest() -> None:
        await (await gateway.backend("acme")).append(
            [ev.TagSuggested(id="sg1", linkId=link_id, name="databases", suggestedAt="t")]
        )

    client.portal.call(suggest)
    return link_id


def test_accepting_a_suggested_tag_tags_the_link(client, suggested):
    link = client.put(f"/v1/orgs/acme/links/{suggested}/tags/databases").json()
    assert link["tags"] == ["databases"] and link["suggestedTags"] == []


def test_dismissing_a_suggested_tag_removes_it(client, suggested):
    link = client.delete(f"/v1/orgs/acme/links/{suggested}/suggestedTags/databases").json()
    assert link["suggestedTags"] == [] and link["tags"] == []
    names = [e["name"] for e in client.get("/v1/orgs/acme/events").json()["events"]]
    assert names[-1] == "v1.TagSuggestionDismissed"


def test_tagging_twice_and_untagging_what_is_not_there_commit_nothing(client, suggested):
    client.put(f"/v1/orgs/acme/links/{suggested}/tags/mine")
    head = client.get("/v1/orgs/acme/events?limit=1").json()["head"]
    assert client.put(f"/v1/orgs/acme/links/{suggested}/tags/mine").json()["tags"] == ["mine"]
    assert client.delete(f"/v1/orgs/acme/links/{suggested}/tags/other").status_code == 200
    assert client.get("/v1/orgs/acme/events?limit=1").json()["head"] == head


def test_tags_of_a_missing_link_are_404_and_a_blank_name_422(client, suggested):
    assert client.put("/v1/orgs/acme/links/nope/tags/x").status_code == 404
    response = client.put(f"/v1/orgs/acme/links/{suggested}/tags/%20%20")
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"


def test_a_link_s_history_lists_its_processing_events(client, gateway, suggested):
    enrich(client, gateway, suggested, title="T")
    names = [e["name"] for e in client.get(f"/v1/orgs/acme/links/{suggested}/history").json()["events"]]
    assert names == ["v1.LinkCreated", "v1.TagSuggested", "v1.LinkMetadataFetched"]
    assert client.get("/v1/orgs/acme/links/nope/history").status_code == 404


# -- export ---------------------------------------------------------------------


@pytest.mark.parametrize("format", ["html", "json"])
def test_import_of_an_export_into_a_fresh_org_gives_the_same_links_and_tags(client, settings, gateway, format):
    import_links(
        client,
        {"url": "https://a.example/x?y=1", "tags": ["one", "two words"]},
        {"url": "https://b.example/", "tags": []},
        {"url": "https://c.example/é", "tags": ["Café"]},
    )
    enrich(client, gateway, client.get("/v1/orgs/acme/links").json()["links"][0]["id"], title="C", summary="S.")
    exported = client.get("/v1/orgs/acme/export", params={"format": format})
    assert exported.status_code == 200
    entries = read_bookmarks(exported.content).entries
    fresh = {"Authorization": f"Bearer {issue_token(settings, 'fresh')}"}
    body = {"links": [{"url": e.url, "tags": list(e.tags)} for e in entries]}
    assert client.post("/v1/orgs/fresh/links:batch", json=body, headers=fresh).json()["counts"]["created"] == 3

    def links_and_tags(org: str, headers: dict[str, str]) -> set[tuple[str, tuple[str, ...]]]:
        links = client.get(f"/v1/orgs/{org}/links", headers=headers).json()["links"]
        return {(link["url"], tuple(link["tags"])) for link in links}

    assert links_and_tags("fresh", fresh) == links_and_tags("acme", dict(client.headers))


def test_the_json_export_holds_metadata_summary_tags_and_status(client, gateway):
    link_id = import_links(client, {"url": "https://a.example/", "tags": ["t"]})["results"][0]["id"]
    enrich(client, gateway, link_id, title="Title", summary="Summary.")
    document = client.get("/v1/orgs/acme/export").json()
    assert document["format"] == "linkproc-export" and document["org"] == "acme"
    (link,) = document["links"]
    assert link["metadata"]["title"] == "Title" and link["summary"]["text"] == "Summary."
    assert link["tags"] == ["t"] and "processing" in link and link["status"] == "unread"
