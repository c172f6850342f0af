"""The repository stands alone and says what it does: its contract document, links and error tree agree with the code."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest
from starlette.routing import Route, WebSocketRoute

import linkproc_ray.errors as errors
from linkproc_ray.api.http import create_api

REPO = Path(__file__).resolve().parents[2]
API_DOC = REPO / "docs" / "API.md"


def tracked_files(*patterns: str) -> list[Path]:
    listed = subprocess.run(["git", "ls-files", *patterns], cwd=REPO, capture_output=True, text=True, check=True)
    return [REPO / line for line in listed.stdout.splitlines() if (REPO / line).is_file()]


def documented_routes() -> set[tuple[str, str]]:
    """``(METHOD, path)`` of every row of the routes table in docs/API.md."""
    rows = re.findall(r"^\| (GET|POST|PUT|PATCH|DELETE|WS) `([^`?]+)", API_DOC.read_text(), re.MULTILINE)
    return {(method, path) for method, path in rows}


def app_routes() -> set[tuple[str, str]]:
    routes: set[tuple[str, str]] = set()
    for route in create_api().routes:
        if isinstance(route, WebSocketRoute):
            routes.add(("WS", route.path.replace("{org}", "{org}")))
        elif isinstance(route, Route) and route.include_in_schema:
            for method in route.methods or ():
                if method != "HEAD":
                    routes.add((method, route.path.replace("{link_id}", "{id}")))
    return routes


def test_every_route_of_the_app_is_in_the_api_document():
    assert app_routes() - documented_routes() == set()


def test_the_api_document_names_no_route_the_app_lacks():
    assert documented_routes() - app_routes() == set()


def test_every_http_route_is_in_the_openapi_schema():
    paths = create_api().openapi()["paths"]
    in_schema = {(method.upper(), path.replace("{link_id}", "{id}")) for path, ops in paths.items() for method in ops}
    http_routes = {route for route in app_routes() if route[0] != "WS"}
    assert http_routes == in_schema


# -- links and paths ------------------------------------------------------------

MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# A repo path in backticks or a YAML comment: a known top folder, then a file name with an extension.
REPO_PATH = re.compile(
    r"(?<![\w./-])((?:docs|cluster|benchmarks|tests|src|k8s)/[\w./-]*\w\.(?:md|ya?ml|py|json|png|txt|toml))\b"
)


def documents() -> list[Path]:
    return tracked_files("*.md") + tracked_files("*.yaml", "*.yml")


def referenced_paths(path: Path) -> list[str]:
    text = path.read_text("utf-8")
    if path.suffix in (".yaml", ".yml"):
        text = "\n".join(line.split("#", 1)[1] for line in text.splitlines() if "#" in line)
        return REPO_PATH.findall(text)
    links = [link for link in MARKDOWN_LINK.findall(text) if "://" not in link and not link.startswith("mailto:")]
    return links + REPO_PATH.findall(text)


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_document_the_repository_names_exists(document: Path):
    missing = []
    for ref in referenced_paths(document):
        candidates = [(document.parent / ref).resolve(), (REPO / ref).resolve()]
        if not any(c.exists() for c in candidates):
            missing.append(ref)
    assert missing == []


def test_nothing_points_outside_the_repository():
    # A clone has no folders beside it: nothing may read or cite the work folder's common one.
    outside = "../" + "shared"
    offenders = [
        str(path.relative_to(REPO))
        for path in tracked_files("*.py", "*.md", "*.yaml", "*.toml", "Makefile", ".ci/*")
        if outside in path.read_text("utf-8")
    ]
    assert offenders == []


# -- the error tree ----------------------------------------------------------------

ALLOWED_BUILTINS = {
    "AssertionError",  # invariants
    "ValueError",  # inside pydantic validators, which turn it into a ConfigError naming the setting
    "typer.BadParameter",  # the CLI's own usage errors
    "typer.Exit",
}


def raised_names() -> set[str]:
    names: set[str] = set()
    for path in (REPO / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                names.add(ast.unparse(node.exc.func))
    return names


def test_every_exception_raised_on_purpose_is_in_the_tree():
    outside = {
        name
        for name in raised_names() - ALLOWED_BUILTINS
        if not (hasattr(errors, name) and issubclass(getattr(errors, name), errors.LinkprocError))
    }
    assert outside == set()


def error_classes() -> list[type[errors.LinkprocError]]:
    found = [getattr(errors, name) for name in dir(errors)]
    return [cls for cls in found if isinstance(cls, type) and issubclass(cls, errors.LinkprocError)]


def api_error_codes() -> dict[str, set[int]]:
    """The ``code status`` pairs of the Errors section of docs/API.md (e.g. ``invalid_request`` 400/422)."""
    section = API_DOC.read_text().split("## Errors", 1)[1].split("##", 1)[0]
    codes: dict[str, set[int]] = {}
    for code, statuses in re.findall(r"`(\w+)` ([\d/]+)", section):
        codes[code] = {int(s) for s in statuses.split("/")}
    return codes


@pytest.mark.parametrize("cls", error_classes(), ids=lambda c: c.__name__)
def test_each_error_answers_with_a_documented_code_and_status(cls: type[errors.LinkprocError]):
    documented = api_error_codes()
    assert cls.http_error in documented
    assert cls.http_status in documented[cls.http_error]
    assert cls.close_code in (
        errors.CLOSE_POLICY,
        errors.CLOSE_SERVER_ERROR,
        errors.CLOSE_UNAUTHORIZED,
        errors.CLOSE_FORBIDDEN,
    )


def test_the_tree_in_the_docstring_names_every_error_class():
    drawn = set(re.findall(r"[├└]── (\w+)", errors.__doc__ or ""))
    assert {cls.__name__ for cls in error_classes()} - {"LinkprocError"} == drawn


def test_the_cli_and_the_web_page_put_failures_in_the_same_words():
    # Two audiences, one vocabulary: the web page is plain JS with no build step, so it keeps its
    # own copy of the words, and this test keeps the copies equal.
    from linkproc_ray.cli.links import FAILURE_WORDS

    script = (REPO / "src/linkproc_ray/api/web/failures.js").read_text("utf-8")
    block = script[script.index("const WORDS = {") : script.index("};")]
    in_js = dict(re.findall(r'^\s*"?([\w:]+)"?: "([^"]+)",$', block, re.MULTILINE))
    assert len(in_js) >= 15 and in_js == dict(FAILURE_WORDS)
