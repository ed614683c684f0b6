"""The HTTP layer on both backends: auth, isolation, limits and error shapes."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from workhorse.api.config import ApiConfig
from workhorse.api.server import ApiServer, MaskTokens
from workhorse.storage import Storage


@dataclass
class Api:
    """A served API with one project and token, plus a second project."""

    url: str
    project: str
    token: str
    other: str
    other_token: str
    server: ApiServer

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client sending `token` (the project's by default)."""
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"OAuth {token or self.token}"},
            timeout=60,
        )


@contextmanager
def running_api(storage: Storage, **config: object) -> Iterator[Api]:
    """Serve the API on a free port on a thread; always stopped."""

    def setup(tx):  # type: ignore[no-untyped-def]
        one, two = tx.projects.create("one"), tx.projects.create("two")
        return (
            one.id,
            tx.projects.create_token(one.id)[1],
            two.id,
            tx.projects.create_token(two.id)[1],
        )

    project, token, other, other_token = storage.run(setup)
    server = ApiServer(
        storage.settings, storage, host="127.0.0.1", port=0, config=ApiConfig(**config)
    )  # type: ignore[arg-type]
    server.start()
    try:
        yield Api(server.url, project, token, other, other_token, server)
    finally:
        server.stop()


@pytest.fixture
def api(storage: Storage) -> Iterator[Api]:
    """The API with default limits but a short token cache."""
    with running_api(storage, token_cache_seconds=0.2) as served:
        yield served


def _code_and_task(api: Api) -> str:
    with api.client() as http:
        base = f"/2/projects/{api.project}"
        assert (
            http.post(
                f"{base}/codes", json={"name": "c", "command": "true"}
            ).status_code
            == 200
        )
        return str(
            http.post(f"{base}/tasks", json={"tasks": [{"code_name": "c"}]}).json()[
                "tasks"
            ][0]["id"]
        )


def test_every_way_to_send_a_token(api: Api) -> None:
    path = f"/2/projects/{api.project}/codes"
    with httpx.Client(base_url=api.url) as http:
        assert (
            http.get(path, headers={"Authorization": f"OAuth {api.token}"}).status_code
            == 200
        )
        assert (
            http.get(path, headers={"Authorization": f"Bearer {api.token}"}).status_code
            == 200
        )
        assert http.get(path, params={"oauth": api.token}).status_code == 200
        missing = http.get(path)
        assert missing.status_code == 401
        assert missing.headers["content-type"] == "application/json"
        assert "msg" in missing.json()
        assert http.get(path, params={"oauth": "nope"}).status_code == 401


def test_a_token_only_opens_its_own_project(api: Api) -> None:
    task_id = _code_and_task(api)
    with api.client() as mine:
        assert mine.get(f"/2/projects/{api.other}/codes").status_code == 401
    with api.client(api.other_token) as theirs:
        found = theirs.get(f"/2/projects/{api.other}/tasks/{task_id}")
        assert (found.status_code, found.json()) == (404, {"msg": "Task not found"})
        assert (
            theirs.get(f"/v1/projects/{api.other}/tasks/{task_id}").status_code == 404
        )
        assert theirs.get(f"/2/projects/{api.other}/tasks").json() == {"tasks": []}


def test_revoked_token_stops_working_within_the_cache_time(
    api: Api, storage: Storage
) -> None:
    with api.client() as http:
        path = f"/2/projects/{api.project}/codes"
        assert http.get(path).status_code == 200
        tokens = storage.run(lambda tx: tx.projects.list_tokens(api.project))
        storage.run(lambda tx: tx.projects.revoke_token(tokens[0].id))
        for _ in range(500):  # the 0.2 s cache runs out long before this ends
            status = http.get(path).status_code
            if status != 200:
                break
        assert status == 401


def test_tokens_are_stored_hashed(api: Api, storage: Storage) -> None:
    rows = storage.run(lambda tx: tx.conn.fetch_all("SELECT token_hash FROM tokens"))
    hashes = {r["token_hash"] for r in rows}
    assert api.token not in hashes
    assert len(next(iter(hashes))) == 64


def test_failed_authentications_are_rate_limited(storage: Storage) -> None:
    with (
        running_api(storage, auth_failures_per_minute=3) as api,
        httpx.Client(base_url=api.url) as http,
    ):
        path = f"/2/projects/{api.project}/codes"
        assert http.get(path, params={"oauth": api.token}).status_code == 200
        statuses = [
            http.get(path, params={"oauth": "guess"}).status_code for _ in range(6)
        ]
        assert statuses[:3] == [401, 401, 401]
        assert statuses[-1] == 429
        limited = http.get(path, params={"oauth": "guess"})
        assert int(limited.headers["retry-after"]) >= 1
        # a token already known good keeps working from the limited address
        assert http.get(path, params={"oauth": api.token}).status_code == 200


def test_per_token_rate_limit(storage: Storage) -> None:
    with running_api(storage, rate_per_second=1.0) as api, api.client() as http:
        statuses = [
            http.get(f"/2/projects/{api.project}/codes").status_code for _ in range(5)
        ]
        assert statuses[0] == 200
        assert statuses[-1] == 429
        limited = http.get(f"/2/projects/{api.project}/codes")
        assert limited.json()["msg"]
        assert int(limited.headers["retry-after"]) >= 1


def test_bad_bodies(storage: Storage) -> None:
    with (
        running_api(storage, max_body_bytes=1000, max_tasks_per_request=2) as api,
        api.client() as http,
    ):
        tasks = f"/2/projects/{api.project}/tasks"
        big = http.post(
            tasks, content=b"x" * 2000, headers={"Content-Type": "application/json"}
        )
        assert (big.status_code, big.headers["content-type"]) == (
            413,
            "application/json",
        )

        def chunks() -> Iterator[bytes]:
            yield from [b"{" + b" " * 600, b" " * 600 + b"}"]

        assert (
            http.post(
                tasks, content=chunks(), headers={"Content-Type": "application/json"}
            ).status_code
            == 413
        )
        bad = http.post(
            tasks, content=b"{nope", headers={"Content-Type": "application/json"}
        )
        assert (bad.status_code, bad.json()) == (
            400,
            {"msg": "Invalid JSON in request body"},
        )
        assert (
            http.post(
                tasks, content=b"{}", headers={"Content-Type": "text/plain"}
            ).status_code
            == 406
        )
        assert http.post(tasks, json=[1, 2]).status_code == 400
        many = {"tasks": [{"code_name": "c"}] * 3}
        assert http.post(tasks, json=many).status_code == 400
        messages = {"messages": [{"body": "m"}] * 101}
        assert http.post(
            f"/3/projects/{api.project}/queues/q/messages", json=messages
        ).status_code in (400, 413)


def test_unknown_routes_and_wrong_verbs_answer_json(api: Api) -> None:
    with api.client() as http:
        unknown = http.get("/9/nothing/here")
        assert (unknown.status_code, unknown.json()) == (404, {"msg": "Not found"})
        wrong = http.put(f"/2/projects/{api.project}/tasks")
        assert wrong.status_code == 405
        assert wrong.headers["content-type"] == "application/json"
        assert "GET" in wrong.headers["allow"]


def test_successes_are_never_204_and_always_json(api: Api) -> None:
    task_id = _code_and_task(api)
    with api.client() as http:
        base = f"/2/projects/{api.project}"
        for resp in (
            http.post(f"{base}/tasks/{task_id}/cancel"),
            http.post(f"{base}/tasks/{task_id}/cancel"),
            http.delete(f"/3/projects/{api.project}/queues/nothing"),
        ):
            assert resp.status_code != 204
            assert resp.headers["content-type"] == "application/json"


def test_access_log_masks_tokens() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", "/2/x?a=1&oauth=SECRET&b=2", "1.1", 200),
        None,
    )
    assert MaskTokens().filter(record)
    assert "SECRET" not in record.getMessage()
    assert "oauth=***" in record.getMessage()


def test_native_api_parent_child_and_stats(api: Api) -> None:
    parent = _code_and_task(api)
    with api.client() as http:
        base = f"/v1/projects/{api.project}"
        queued = http.post(
            f"{base}/tasks",
            json={
                "tasks": [
                    {
                        "code_name": "c",
                        "payload": "{}",
                        "parent_id": parent,
                        "retries": 2,
                    }
                ]
            },
        )
        assert queued.status_code == 201
        (child,) = [t["id"] for t in queued.json()["tasks"]]
        task = http.get(f"{base}/tasks/{child}").json()
        assert (task["parent_id"], task["retries"], task["status"]) == (
            parent,
            2,
            "queued",
        )
        assert task["result"] is None
        children = http.get(f"{base}/tasks/{parent}/children").json()
        assert children["total"] == 1
        assert children["summary"] == {"queued": 1}
        assert [t["id"] for t in children["tasks"]] == [child]
        assert http.get(f"{base}/tasks/{child}/attempts").json() == {"attempts": []}
        assert http.get(f"{base}/stats").json()["codes"]["c"]["queued"] == 2
        assert "runners" in http.get(f"{base}/runners").json()
    with api.client(api.other_token) as theirs:
        theirs.post(
            f"/2/projects/{api.other}/codes", json={"name": "c", "command": "true"}
        )
        foreign = theirs.post(
            f"/v1/projects/{api.other}/tasks",
            json={"tasks": [{"code_name": "c", "parent_id": parent}]},
        )
        assert foreign.status_code == 404
        assert foreign.json()["msg"] == f"parent task {parent} not found"


def test_every_request_is_counted_for_the_metrics(api: Api) -> None:
    from workhorse.metrics import REQUESTS

    key = ("iron_mq", "GET", "404")
    before, _ = REQUESTS.snapshot()
    with api.client() as http:
        for _ in range(3):
            assert http.get(f"/3/projects/{api.project}/queues/nope").status_code == 404
    after, durations = REQUESTS.snapshot()
    assert after.get(key, 0) - before.get(key, 0) == 3
    assert durations["iron_mq"].count >= 3


def test_the_hud_is_served_and_reads_only_routes_that_exist(api: Api) -> None:
    with api.client() as http:
        page = http.get("/hud")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert '<script src="/hud/hud.js"' in page.text
        script = http.get("/hud/hud.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert http.get("/hud/hud.css").headers["content-type"].startswith("text/css")
        assert http.put(f"/3/projects/{api.project}/queues/orders", json={}).is_success
        paths = re.findall(r"api\(`([^`]+)`\)", script.text)
        assert len(paths) == 5
        for template in paths:
            path = template.replace("${p}", api.project).replace(
                "${encodeURIComponent(q.name)}", "orders"
            )
            assert "$" not in path, template
            assert http.get(path).status_code == 200, path
            # and nothing without the token
            assert httpx.get(api.url + path).status_code == 401, path


def test_unique_keys_over_every_way_to_queue(api: Api) -> None:
    """Native and Iron APIs and the webhook: a held key answers with its holder."""
    _code_and_task(api)
    with api.client() as http:
        native = f"/v1/projects/{api.project}/tasks"
        first = http.post(
            native,
            json={
                "tasks": [
                    {"code_name": "c", "payload": "1", "unique_key": "k"},
                    {"code_name": "c", "payload": "2", "unique_key": "k"},
                ]
            },
        )
        assert first.status_code == 201
        (a, b) = first.json()["tasks"]
        assert (a["duplicate"], b) == (False, {"id": a["id"], "duplicate": True})
        assert http.get(f"{native}/{a['id']}").json()["unique_key"] == "k"
        iron = http.post(
            f"/2/projects/{api.project}/tasks",
            json={"tasks": [{"code_name": "c", "unique_key": "k"}]},
        )
        assert iron.json()["tasks"] == [{"id": a["id"]}]
        hook = f"/2/projects/{api.project}/tasks/webhook"
        hooked = http.post(
            hook, params={"code_name": "c", "unique_key": "k"}, content="x"
        )
        assert hooked.json()["id"] == a["id"]
        bad = http.post(native, json={"tasks": [{"code_name": "c", "unique_key": 7}]})
        assert bad.status_code == 400
        assert "unique_key" in bad.json()["msg"]
        assert (
            http.get(f"/v1/projects/{api.project}/stats").json()["codes"]["c"]["queued"]
            == 2
        )  # the first task of _code_and_task, and the keyed one


def test_a_code_uploaded_with_a_rate_limit_shows_it(api: Api) -> None:
    with api.client() as http:
        base = f"/2/projects/{api.project}/codes"
        made = http.post(
            base, json={"name": "r", "command": "true", "rate_limit": "30/m"}
        )
        assert made.status_code == 200, made.text
        assert made.json()["rate_limit"] == "30/m"
        listed = {c["name"]: c for c in http.get(base).json()["codes"]}
        assert listed["r"]["rate_limit"] == "30/m"
        for bad in ("fast", 0, True):
            refused = http.post(
                base, json={"name": "r", "command": "true", "rate_limit": bad}
            )
            assert refused.status_code == 400
            assert "rate_limit must be" in refused.json()["msg"]
        assert http.get(f"{base}/{made.json()['id']}").json()["rev"] == 1
