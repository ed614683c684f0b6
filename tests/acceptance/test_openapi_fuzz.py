"""Schemathesis against /openapi.json of a real server: no 5xx, responses as documented.

About 50 generated cases per operation (about 2 900 in all). Generated ids are
swapped for real ones half of the time so that handlers past the 404 get fuzzed
too; long-poll waits are cut to 0 so the run stays short.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.acceptance.conftest import Running, Server, create_project
from workhorse.api.openapi import document

pytestmark = pytest.mark.slow
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Running, dict[str, str]]]:
    """A SQLite-backed server seeded with a code, a task, a schedule and a queue."""
    workdir = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{workdir / 'workhorse.db'}"
    project = create_project(url, "fuzz", workdir)
    other = create_project(url, "other", workdir)
    server = Server(
        url, workdir, env={"WORKHORSE_API_AUTH_FAILURES_PER_MINUTE": "100000"}
    )
    server.start()
    try:
        yield (
            Running(server, project, other),
            _seed(server.url, project.id, project.token),
        )
    finally:
        server.stop()


def _seed(base: str, project_id: str, token: str) -> dict[str, str]:
    headers = {"Authorization": f"OAuth {token}"}
    p = f"{base}/2/projects/{project_id}"
    with httpx.Client(headers=headers, timeout=30) as http:
        code = http.post(
            f"{p}/codes", json={"name": "fuzz", "command": "sleep 60"}
        ).json()
        task = http.post(f"{p}/tasks", json={"tasks": [{"code_name": "fuzz"}]}).json()
        sched = http.post(
            f"{p}/schedules",
            json={"schedules": [{"code_name": "fuzz", "run_every": 3600}]},
        ).json()
        seeded = {
            "code_id": code["id"],
            "task_id": task["tasks"][0]["id"],
            "schedule_id": sched["schedules"][0]["id"],
            "cluster_id": "default",
        }
        queue = http.post(
            f"{base}/3/projects/{project_id}/queues/fuzzq/messages",
            json={"messages": [{"body": "hello"}]},
        )
        if queue.status_code == 201:
            seeded["queue_name"] = "fuzzq"
            seeded["message_id"] = queue.json()["ids"][0]
    return seeded


# The document is built in-process (the same function serves /openapi.json; a test
# below checks they match), because schemathesis' lazy fixture loader does not
# work with this pytest.
schema = schemathesis.openapi.from_dict(document())


def _prepare(case: schemathesis.Case, project_id: str, seeded: dict[str, str]) -> None:
    params = case.path_parameters or {}
    if "project_id" in params:
        params["project_id"] = project_id
    for name, real in seeded.items():
        if name in params and len(str(params[name])) % 2 == 0:
            params[name] = real
    if isinstance(case.body, dict) and "wait" in case.body:
        case.body["wait"] = 0


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_matches_its_document(
    case: schemathesis.Case, fuzzed: tuple[Running, dict[str, str]]
) -> None:
    running, seeded = fuzzed
    _prepare(case, running.project.id, seeded)
    case.call_and_validate(
        base_url=running.server.url,
        headers={"Authorization": f"OAuth {running.project.token}"},
        checks=CHECKS,
        timeout=40,
    )


def test_document_is_served_and_lists_every_api(
    fuzzed: tuple[Running, dict[str, str]],
) -> None:
    running, _ = fuzzed
    doc = httpx.get(f"{running.server.url}/openapi.json").json()
    assert doc == json.loads(json.dumps(document()))
    prefixes = {path.split("/")[1] for path in doc["paths"]}
    assert {"2", "3", "v1"} <= prefixes
