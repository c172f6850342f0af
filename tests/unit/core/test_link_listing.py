"""``GET /links`` as the web page uses it: the ``processing`` filter, paging under a filter, and tags on each link."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from linkproc_ray.api.auth import TokenVerifier, issue_token
from linkproc_ray.api.gateway import LocalGateway
from linkproc_ray.api.http import create_api
from linkproc_ray.config import Settings
from linkproc_ray.core import events as ev

SECRET = "test-secret-that-is-long-enough-for-hs256"
WHEN = "2026-01-01T00:00:00.000Z"


@pytest.fixture
def client(tmp_path):
    settings = Settings(data_dir=tmp_path, jwt_secret=SECRET)
    api = create_api()
    gateway = LocalGateway(tmp_path)
    api.state.gateway = gateway
    api.state.verifier = TokenVerifier(settings)
    with TestClient(
        api,
        base_url="http://testserver/v1/orgs/acme/",
        headers={"Authorization": f"Bearer {issue_token(settings, 'acme')}"},
    ) as test_client:
        yield test_client
        test_client.portal.call(gateway.close)


def push(client: TestClient, *args: ev.EventArgs) -> None:
    head = client.get("events", params={"after": 0, "limit": 1}).json()["head"]
    events = [
        {"id": f"e{head}-{i}", "name": a.NAME, "args": a.to_json(), "clientId": "test", "sessionId": "s"}
        for i, a in enumerate(args)
    ]
    assert client.post("events", json={"parent": head, "events": events}).status_code == 200


def save(client: TestClient, name: str) -> str:
    return str(client.post("links", json={"url": f"https://example.com/{name}"}).json()["id"])


def listed(client: TestClient, *processing: str, **params: object) -> list[str]:
    body = client.get("links", params={"processing": list(processing), **params}).json()
    return [link["url"].rsplit("/", 1)[1] for link in body["links"]]


@pytest.fixture
def four(client):
    """Links in each state: waiting, processing, failed, completed (saved in that order)."""
    ids = {name: save(client, name) for name in ("waiting", "processing", "failed", "completed")}
    push(
        client,
        ev.LinkProcessingStarted(linkId=ids["processing"], updatedAt=WHEN),
        ev.LinkProcessingStarted(linkId=ids["failed"], updatedAt=WHEN),
        ev.LinkProcessingFailed(linkId=ids["failed"], error="fetch:timeout", updatedAt=WHEN),
        ev.LinkProcessingStarted(linkId=ids["completed"], updatedAt=WHEN),
        ev.LinkProcessingCompleted(linkId=ids["completed"], updatedAt=WHEN),
    )
    return ids


@pytest.mark.parametrize(
    ("processing", "expected"),
    [
        ((), ["completed", "failed", "processing", "waiting"]),
        (("none",), ["waiting"]),
        (("pending",), ["processing"]),
        (("failed",), ["failed"]),
        (("completed",), ["completed"]),
        (("none", "failed"), ["failed", "waiting"]),
        (("cancelled",), []),
    ],
)
def test_processing_filter_keeps_links_in_those_states_newest_first(client, four, processing, expected):
    assert listed(client, *processing) == expected


def test_a_reprocess_request_is_its_own_processing_state(client, four):
    push(client, ev.LinkReprocessRequested(linkId=four["completed"], requestedAt=WHEN))
    assert listed(client, "none", "reprocess_requested") == ["completed", "waiting"]
    assert listed(client, "completed") == []


def test_pages_under_a_filter_continue_with_the_cursor(client):
    ids = [save(client, f"f{i}") for i in range(5)]
    save(client, "other")
    push(client, *(ev.LinkProcessingStarted(linkId=i, updatedAt=WHEN) for i in ids))
    first = client.get("links", params={"processing": "pending", "limit": 3}).json()
    rest = client.get("links", params={"processing": "pending", "limit": 3, "cursor": first["next_cursor"]}).json()
    assert [link["url"][-2:] for link in first["links"] + rest["links"]] == ["f4", "f3", "f2", "f1", "f0"]
    assert rest["next_cursor"] is None


def test_an_unknown_processing_value_is_422_naming_the_field(client, four):
    response = client.get("links", params={"processing": "done"})
    assert response.status_code == 422
    assert (response.json()["error"], response.json()["field"]) == ("invalid_request", "query.processing.0")


def test_a_link_shows_its_tags_and_the_suggestions_not_yet_among_them(client):
    link_id = save(client, "tagged")
    push(
        client,
        ev.TagCreated(id="t-python", name="python", createdAt=WHEN),
        ev.TagCreated(id="t-old", name="old", createdAt=WHEN),
        ev.LinkTagged(linkId=link_id, tagId="t-python"),
        ev.LinkTagged(linkId=link_id, tagId="t-old"),
        ev.TagDeleted(id="t-old", deletedAt=WHEN),
        ev.TagSuggested(id="s1", linkId=link_id, name="ray", suggestedAt=WHEN),
        ev.TagSuggested(id="s2", linkId=link_id, tagId="t-python", name="python", suggestedAt=WHEN),
        ev.TagSuggested(id="s3", linkId=link_id, name="asyncio", suggestedAt=WHEN),
        ev.TagSuggested(id="s4", linkId=link_id, name="ray", suggestedAt=WHEN),
    )
    link = client.get(f"links/{link_id}").json()
    assert (link["tags"], link["suggestedTags"]) == (["python"], ["ray", "asyncio"])
    assert client.get("links").json()["links"][0]["suggestedTags"] == ["ray", "asyncio"]


def test_a_new_link_has_no_tags(client):
    link = client.post("links", json={"url": "https://example.com/bare"}).json()
    assert (link["tags"], link["suggestedTags"]) == ([], [])
