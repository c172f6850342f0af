"""The HTTP contract of API.md over in-process backends: status codes and JSON error bodies."""

from __future__ import annotations

import time

import jwt
import pytest
from fastapi.testclient import TestClient

from linkproc_ray.api.auth import TokenVerifier, issue_token
from linkproc_ray.api.gateway import LocalGateway
from linkproc_ray.api.http import create_api
from linkproc_ray.config import Settings

SECRET = "test-secret-that-is-long-enough-for-hs256"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, jwt_secret=SECRET)


@pytest.fixture
def client(settings, tmp_path):
    api = create_api()
    gateway = LocalGateway(tmp_path)
    api.state.gateway = gateway
    api.state.verifier = TokenVerifier(settings)
    with TestClient(api) as test_client:
        yield test_client
        test_client.portal.call(gateway.close)


def auth(settings: Settings, org: str = "acme", **claims) -> dict[str, str]:
    token = issue_token(settings, org) if not claims else jwt.encode(claims, SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def new_event(event_id: str, name: str = "v1.LinkCreated", **args) -> dict:
    args = args or {"id": event_id, "url": f"https://e.example/{event_id}", "domain": "e.example", "createdAt": "t"}
    return {"id": event_id, "name": name, "args": args, "clientId": "c", "sessionId": "s"}


def test_healthz_needs_no_token(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_openapi_describes_every_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/healthz",
        "/v1/orgs/{org}/events",
        "/v1/orgs/{org}/links",
        "/v1/orgs/{org}/links/{link_id}",
        "/v1/orgs/{org}/links/{link_id}/reprocess",
    } <= set(paths)


def test_missing_token_is_401_with_bearer_challenge(client):
    response = client.get("/v1/orgs/acme/links")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthorized"


def test_badly_signed_token_is_401(client):
    forged = jwt.encode({"sub": "u", "orgId": "acme", "exp": time.time() + 60}, "other-secret-xxxxxxxxxxxxxxxxxxxxxxxx")
    response = client.get("/v1/orgs/acme/links", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_expired_token_is_401(client, settings):
    response = client.get(
        "/v1/orgs/acme/links", headers=auth(settings, sub="u", orgId="acme", exp=int(time.time()) - 10)
    )
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_token_without_required_claims_is_401(client, settings):
    response = client.get("/v1/orgs/acme/links", headers=auth(settings, sub="u", exp=int(time.time()) + 60))
    assert response.status_code == 401


def test_alg_none_token_is_401(client):
    unsigned = jwt.encode({"sub": "u", "orgId": "acme", "exp": int(time.time()) + 60}, None, algorithm="none")
    response = client.get("/v1/orgs/acme/links", headers={"Authorization": f"Bearer {unsigned}"})
    assert response.status_code == 401


def test_token_of_another_org_is_403(client, settings):
    response = client.get("/v1/orgs/acme/links", headers=auth(settings, "globex"))
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


def test_malformed_org_id_is_400(client, settings):
    response = client.get("/v1/orgs/-bad!/links", headers=auth(settings, "acme"))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_push_then_pull_round_trip(client, settings):
    pushed = client.post(
        "/v1/orgs/acme/events", headers=auth(settings), json={"parent": 0, "events": [new_event("e1")]}
    )
    assert pushed.json() == {"head": 1, "seqs": [1]}
    pulled = client.get("/v1/orgs/acme/events?after=0", headers=auth(settings)).json()
    assert pulled["head"] == 1
    assert pulled["events"][0] == {**new_event("e1"), "seq": 1, "parent": 0}


def test_stale_parent_is_409_server_ahead_with_head(client, settings):
    client.post("/v1/orgs/acme/events", headers=auth(settings), json={"parent": 0, "events": [new_event("e1")]})
    response = client.post(
        "/v1/orgs/acme/events", headers=auth(settings), json={"parent": 0, "events": [new_event("e2")]}
    )
    assert response.status_code == 409
    assert response.json()["error"] == "server_ahead"
    assert response.json()["head"] == 1


def test_unknown_event_name_is_422_naming_event_and_field(client, settings):
    response = client.post(
        "/v1/orgs/acme/events",
        headers=auth(settings),
        json={"parent": 0, "events": [new_event("e1"), new_event("e2", name="v1.LinkExploded", id="x")]},
    )
    assert response.status_code == 422
    body = response.json()
    assert (body["error"], body["event"], body["field"]) == ("invalid_request", "v1.LinkExploded", "name")
    assert client.get("/v1/orgs/acme/events", headers=auth(settings)).json()["head"] == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b'{"parent": "0", "events": []}', 422),
        (b'{"parent": true, "events": []}', 422),
        (b'{"parent": 0, "events": {}}', 422),
        (b'{"parent": 0, "events": [{"id": 1}]}', 422),
    ],
)
def test_malformed_push_bodies_are_refused_with_invalid_request(client, settings, body, status):
    response = client.post(
        "/v1/orgs/acme/events", headers={**auth(settings), "Content-Type": "application/json"}, content=body
    )
    assert response.status_code == status
    assert response.json()["error"] == "invalid_request"


def test_push_over_1000_events_is_413(client, settings):
    events = [new_event(f"e{i}") for i in range(1001)]
    response = client.post("/v1/orgs/acme/events", headers=auth(settings), json={"parent": 0, "events": events})
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_push_body_over_1_mb_is_413(client, settings):
    response = client.post(
        "/v1/orgs/acme/events",
        headers={**auth(settings), "Content-Type": "application/json"},
        content=b'{"parent": 0, "events": [' + b" " * 1_200_000 + b"]}",
    )
    assert response.status_code == 413


def test_create_link_is_201_then_200_for_the_same_canonical_url(client, settings):
    first = client.post(
        "/v1/orgs/acme/links", headers=auth(settings), json={"url": "HTTPS://Example.com:443/a?utm_source=x#top"}
    )
    assert first.status_code == 201
    again = client.post("/v1/orgs/acme/links", headers=auth(settings), json={"url": "https://example.com/a"})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["url"] == "https://example.com/a"
    assert first.json()["processing"]["status"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://example.com/"},
        {"url": "/relative"},
        {"url": "https://e.com/" + "a" * 2100},
        {"url": 5},
        {},
        {"url": "javascript:alert(1)"},
    ],
)
def test_bad_link_urls_are_422(client, settings, body):
    response = client.post("/v1/orgs/acme/links", headers=auth(settings), json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_list_get_reprocess_delete_a_link(client, settings):
    link = client.post("/v1/orgs/acme/links", headers=auth(settings), json={"url": "https://example.com/x"}).json()
    listed = client.get("/v1/orgs/acme/links", headers=auth(settings)).json()
    assert [item["id"] for item in listed["links"]] == [link["id"]]
    assert listed["next_cursor"] is None
    assert client.get(f"/v1/orgs/acme/links/{link['id']}", headers=auth(settings)).json()["id"] == link["id"]
    reprocess = client.post(f"/v1/orgs/acme/links/{link['id']}/reprocess", headers=auth(settings))
    assert reprocess.status_code == 202
    assert reprocess.json()["processing"]["status"] == "reprocess_requested"
    deleted = client.delete(f"/v1/orgs/acme/links/{link['id']}", headers=auth(settings))
    assert deleted.status_code == 200
    assert deleted.json()["deletedAt"] is not None
    assert client.get("/v1/orgs/acme/links", headers=auth(settings)).json()["links"] == []
    assert client.delete(f"/v1/orgs/acme/links/{link['id']}", headers=auth(settings)).status_code == 404


def test_unknown_link_is_404_not_found(client, settings):
    response = client.get("/v1/orgs/acme/links/nope", headers=auth(settings))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_links_page_newest_first_with_a_cursor(client, settings):
    ids = [
        client.post("/v1/orgs/acme/links", headers=auth(settings), json={"url": f"https://e.com/{i}"}).json()["id"]
        for i in range(5)
    ]
    page = client.get("/v1/orgs/acme/links?limit=2", headers=auth(settings)).json()
    assert [link["id"] for link in page["links"]] == ids[::-1][:2]
    rest = client.get(f"/v1/orgs/acme/links?limit=10&cursor={page['next_cursor']}", headers=auth(settings)).json()
    assert [link["id"] for link in rest["links"]] == ids[::-1][2:]


def test_orgs_are_isolated(client, settings):
    client.post("/v1/orgs/acme/links", headers=auth(settings, "acme"), json={"url": "https://e.com/a"})
    assert client.get("/v1/orgs/globex/links", headers=auth(settings, "globex")).json()["links"] == []


def test_pull_arguments_out_of_range_are_422(client, settings):
    assert client.get("/v1/orgs/acme/events?limit=10001", headers=auth(settings)).status_code == 422
    assert client.get("/v1/orgs/acme/events?wait=31", headers=auth(settings)).status_code == 422
    assert client.get("/v1/orgs/acme/events?after=-1", headers=auth(settings)).status_code == 422
