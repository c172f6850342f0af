"""The web page's routes without a browser: what is served, with which headers, and what a wheel ships.

The page's behaviour is tested in a real browser in tests/integration/test_web_page.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from linkproc_ray.api.auth import TokenVerifier
from linkproc_ray.api.gateway import LocalGateway
from linkproc_ray.api.http import create_api
from linkproc_ray.api.web import load_web_files
from linkproc_ray.cli.app import page_url
from linkproc_ray.config import Settings

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "src" / "linkproc_ray" / "api" / "web"


@pytest.fixture
def client(tmp_path):
    api = create_api()
    api.state.gateway = LocalGateway(tmp_path)
    api.state.verifier = TokenVerifier(Settings(data_dir=tmp_path, jwt_secret="s" * 40))
    with TestClient(api) as test_client:
        yield test_client


def csp_directives(value: str) -> dict[str, list[str]]:
    parts = (part.split() for part in value.split(";") if part.strip())
    return {name: sources for name, *sources in parts}


@pytest.mark.parametrize("path", ["/", "/app/app.js", "/app/app.css", "/app/icon.svg"])
def test_the_page_and_its_files_carry_a_strict_policy(client, path):
    response = client.get(path)
    assert response.status_code == 200
    csp = csp_directives(response.headers["content-security-policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"], "no inline script, no eval"
    assert "'unsafe-inline'" not in csp["style-src"]
    assert not {"data:", "blob:", "*"} & set(csp["img-src"])
    assert csp["require-trusted-types-for"] == ["'script'"]
    assert csp["frame-ancestors"] == ["'none'"] and csp["form-action"] == ["'none'"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", "text/html; charset=utf-8"),
        ("/app/app.js", "text/javascript; charset=utf-8"),
        ("/app/live.js", "text/javascript; charset=utf-8"),
        ("/app/app.css", "text/css; charset=utf-8"),
        ("/app/icon.svg", "image/svg+xml"),
    ],
)
def test_each_file_has_its_type(client, path, content_type):
    assert client.get(path).headers["content-type"] == content_type


def test_a_current_copy_is_answered_304(client):
    first = client.get("/app/links.js")
    again = client.get("/app/links.js", headers={"If-None-Match": first.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")
    assert first.headers["cache-control"] == "no-cache"


def test_an_unknown_file_is_404_in_the_api_error_shape(client):
    response = client.get("/app/missing.js")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize("name", ["..%2Fhttp.py", "web.py", "App.js", "index.html", ".hidden.js"])
def test_names_outside_the_asset_pattern_are_refused(client, name):
    assert client.get(f"/app/{name}").status_code in (404, 422)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_page_has_no_inline_script_style_or_handler_and_loads_only_its_own_files():
    parser = _Tags()
    parser.feed((WEB / "index.html").read_text("utf-8"))
    for tag, attrs in parser.tags:
        assert not [name for name in attrs if name.startswith("on")], tag
        assert "style" not in attrs, tag
        if tag == "script":
            assert attrs["src"] and attrs["src"].startswith("/app/") and attrs.get("type") == "module"
        if tag == "link" or (tag == "img" and attrs.get("src")):
            assert (attrs.get("href") or attrs.get("src") or "").startswith("/app/")
    assert "<style" not in (WEB / "index.html").read_text("utf-8")


def test_every_form_field_has_a_label():
    parser = _Tags()
    parser.feed((WEB / "index.html").read_text("utf-8"))
    labelled = {attrs["for"] for tag, attrs in parser.tags if tag == "label"}
    fields = [attrs.get("id") for tag, attrs in parser.tags if tag in ("input", "select", "textarea")]
    assert fields and all(field in labelled for field in fields)


def test_form_fields_have_no_name_so_a_form_can_never_carry_the_token_in_a_url():
    parser = _Tags()
    parser.feed((WEB / "index.html").read_text("utf-8"))
    assert [attrs for tag, attrs in parser.tags if tag in ("input", "select", "textarea") and "name" in attrs] == []


# Sinks that parse strings as HTML or code; the page builds its DOM with createElement and textContent.
FORBIDDEN_JS = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|srcdoc")


@pytest.mark.parametrize("script", sorted(WEB.glob("*.js")), ids=lambda p: p.name)
def test_scripts_use_no_html_or_code_sink(script):
    assert FORBIDDEN_JS.findall(script.read_text("utf-8")) == []


def test_every_packaged_file_is_served(client):
    names = {path.name for path in WEB.iterdir() if path.suffix in (".js", ".css", ".svg")}
    assert names <= set(load_web_files())
    for name in names:
        assert client.get(f"/app/{name}").status_code == 200


def test_a_built_wheel_ships_the_page(tmp_path):
    # Built from a copy, so the checkout gets no build folders.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("linkproc_ray-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"linkproc_ray/api/web/{path.name}" for path in WEB.iterdir() if path.is_file()}
    assert expected - shipped == set()


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000/#token=T"),
        ("0.0.0.0", "http://127.0.0.1:8000/#token=T"),
        ("::1", "http://[::1]:8000/#token=T"),
    ],
)
def test_linkproc_up_prints_the_page_with_the_token_in_the_fragment(host, url):
    assert page_url(host, 8000, "T") == url
    assert "?" not in page_url(host, 8000, "T")
