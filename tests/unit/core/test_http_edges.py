"""Regression tests for what the contract fuzz found, over in-process backends (real SQLite files)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from linkproc_ray.api.auth import ORG_ID, TokenVerifier, issue_token
from linkproc_ray.api.gateway import LocalGateway
from linkproc_ray.api.http import create_api
from linkproc_ray.config import Settings
from linkproc_ray.core.limits import MAX_SEQ

SECRET = "edges-secret-that-is-long-enough-for-hs256"


@pytest.fixture
def client(tmp_path):
    settings = Settings(data_dir=tmp_path, jwt_secret=SECRET)
    api = create_api()
    gateway = LocalGateway(tmp_path)
    api.state.gateway = gateway
    api.state.verifier = TokenVerifier(settings)
    with TestClient(api, headers={"Authorization": f"Bearer {issue_token(settings, 'acme')}"}) as test_client:
        yield test_client
        test_client.portal.call(gateway.close)


def tag_created(event_id: str, **envelope: str) -> dict:
    args = {"id": f"t-{event_id}", "name": "n", "createdAt": "t"}
    return {"id": event_id, "name": "v1.TagCreated", "args": args, "clientId": "c", "sessionId": "s", **envelope}


def test_405_names_every_method_of_the_path_not_only_the_first_routes(client):
    assert client.put("/v1/orgs/acme/events").headers["allow"] == "GET, POST"
    assert client.put("/v1/orgs/acme/links").headers["allow"] == "GET, POST"
    assert client.post("/v1/orgs/acme/links/x").headers["allow"] == "DELETE, GET"


@pytest.mark.parametrize("route", ["/v1/orgs/acme/events", "/v1/orgs/acme/links"])
def test_a_body_nested_too_deeply_to_parse_is_400_not_a_server_error(client, route):
    response = client.post(route, content="[" * 5000 + "]" * 5000)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "detail": "body is nested too deeply to be parsed",
        "field": "body",
    }


@pytest.mark.parametrize("key", ["id", "clientId", "sessionId"])
def test_a_lone_surrogate_in_an_event_is_422_naming_the_field_and_stores_nothing(client, key):
    body = json.dumps({"parent": 0, "events": [tag_created("a")]}).replace(f'"{key}": "', f'"{key}": "\\ud800')
    response = client.post("/v1/orgs/acme/events", content=body)
    assert response.status_code == 422
    assert response.json()["field"] == key
    assert client.get("/v1/orgs/acme/events").json()["head"] == 0


def test_a_parent_written_as_an_integral_number_is_the_integer(client):
    response = client.post("/v1/orgs/acme/events", json={"parent": 0.0, "events": [tag_created("a")]})
    assert response.json() == {"head": 1, "seqs": [1]}
    assert client.post("/v1/orgs/acme/events", json={"parent": 1.5, "events": []}).status_code == 422


@pytest.mark.parametrize(
    "body", [{"parent": MAX_SEQ + 1, "events": []}, {"parent": 2**70, "events": [tag_created("a")]}]
)
def test_a_parent_beyond_sqlites_integers_is_422(client, body):
    response = client.post("/v1/orgs/acme/events", json=body)
    assert (response.status_code, response.json()["field"]) == (422, "parent")


@pytest.mark.parametrize("query", [f"cursor={MAX_SEQ + 1}", "cursor=6820783032128118980608", f"after={MAX_SEQ + 1}"])
def test_a_cursor_beyond_sqlites_integers_is_422_not_a_server_error(client, query):
    route = "/v1/orgs/acme/events" if query.startswith("after") else "/v1/orgs/acme/links"
    response = client.get(f"{route}?{query}")
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_the_schema_documents_the_org_pattern_and_every_status_a_route_answers(client):
    paths = client.get("/openapi.json").json()["paths"]
    push = paths["/v1/orgs/{org}/events"]["post"]
    org = next(p for p in push["parameters"] if p["name"] == "org")
    assert org["schema"]["pattern"] == ORG_ID.pattern
    assert set(push["responses"]) == {"200", "400", "401", "403", "409", "413", "422", "503", "507"}
    assert "requestBody" in push
    create = paths["/v1/orgs/{org}/links"]["post"]
    assert {"GetLink", "ReprocessLink", "DeleteLink"} <= set(create["responses"]["201"]["links"])
    assert "404" in paths["/v1/orgs/{org}/links/{link_id}"]["get"]["responses"]
    for methods in paths.values():
        for operation in methods.values():
            assert operation.get("operationId"), operation
            # The app's one validation handler answers {error, detail, field} on every route.
            invalid = operation["responses"].get("422")
            if invalid is not None:
                assert invalid["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
