"""Schemathesis over the live OpenAPI document, against the real app on the session's Ray cluster.

Its CLI runs every phase (examples, coverage, fuzzing, and the stateful run
that follows the schema's links: create → get → reprocess → delete) with a
valid token for one org and every check; any 5xx, undocumented status or body
that breaks the schema fails the test. Example counts are bounded and the run
is seeded, so it stays within the suite's time and fails the same way twice.
Nothing leaves loopback (see tests/integration/fuzz_hooks.py), which the test
checks in the org's log afterwards.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from tests.integration.conftest import log_of
from tests.integration.fuzz_hooks import PAGE_HOST_ENV
from tests.pages import PageServer

from linkproc_ray.core import events as ev

FUZZ_ORG = "fuzz-contract"
EXAMPLES = 15
"""Examples per operation and phase: about a minute on two cores."""
ROOT = Path(__file__).resolve().parents[2]

CONFIG = f"""
hooks = "tests.integration.fuzz_hooks"
request-timeout = 30
seed = 20261202

[cache]
# A cache of past crashes would make runs differ; each run starts from the seed alone.
enabled = false

[parameters]
"path.org" = "{FUZZ_ORG}"

[generation]
max-examples = {EXAMPLES}
deterministic = true
database = "none"

[checks]
enabled = true  # every check Schemathesis has
# A deleted link stays readable (with deletedAt) until it is restored: docs/API.md says so.
use_after_free.enabled = false
# Too many events or bytes is refused with 413 too_large (docs/API.md), a rejection like 400 and 422.
negative_data_rejection.expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

[[operations]]
# Only the scheme is in the schema: host and port are checked when the URL is
# canonicalized, so a schema-valid URL may still be refused (422, documented).
include-operation-id = "create_link"
checks.positive_data_acceptance.expected-statuses = ["2xx", "422"]

[[operations]]
# JSON Schema cannot say "event ids unique within the push": a repeated id is 422 (documented).
include-operation-id = "push_events"
checks.positive_data_acceptance.expected-statuses = ["2xx", "409", "422"]
"""


def test_every_route_answers_only_as_documented_under_schemathesis(
    serve_url: str, make_token: Callable[..., str], page_server: PageServer, tmp_path: Path
):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    env = {
        **os.environ,
        PAGE_HOST_ENV: page_server.host_port,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        "SCHEMATHESIS_TELEMETRY": "false",
        "NO_COLOR": "1",
    }
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file",
            str(config),
            "run",
            f"{serve_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {make_token(FUZZ_ORG)}",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = run.stdout + run.stderr
    problems = min((output.find(h) for h in ("= ERRORS =", "= FAILURES =") if h in output), default=-1)
    report = output[problems:][:30_000] if problems >= 0 else output[-10_000:]
    assert run.returncode == 0, report
    # Every phase ran, the stateful one included, and every generated case passed every check.
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in report, report
    counts = re.search(r"(\d+) generated, (\d+) passed", report)
    assert counts and counts[1] == counts[2] and int(counts[1]) > 0, report

    with httpx.Client(
        base_url=f"{serve_url}/v1/orgs/{FUZZ_ORG}", headers={"Authorization": f"Bearer {make_token(FUZZ_ORG)}"}
    ) as api:
        created = [e for e in log_of(api) if e["name"] == ev.LinkCreated.NAME]
    assert created, "the fuzz saved no link"
    assert {urlsplit(str(e["args"]["url"])).netloc for e in created} == {page_server.host_port}


def test_a_method_a_path_does_not_take_is_405_naming_every_method_it_takes(serve_url, make_token):
    headers = {"Authorization": f"Bearer {make_token(FUZZ_ORG)}"}
    answers = {
        path: httpx.request("PUT", f"{serve_url}/v1/orgs/{FUZZ_ORG}{path}", headers=headers)
        for path in ("/events", "/links", "/links/some-id", "/links/some-id/reprocess")
    }
    assert {path: r.status_code for path, r in answers.items()} == dict.fromkeys(answers, 405)
    assert {path: r.headers["allow"] for path, r in answers.items()} == {
        "/events": "GET, POST",
        "/links": "GET, POST",
        "/links/some-id": "DELETE, GET",
        "/links/some-id/reprocess": "POST",
    }
    assert answers["/links"].json() == {"error": "invalid_request", "detail": "Method Not Allowed"}
