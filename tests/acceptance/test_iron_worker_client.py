"""The official iron-worker 1.3.8 client, unchanged, against `workhorse up`.

Every public method is exercised except `download`, which is broken in the client
itself (docs/iron-compat.md); the download endpoint is checked over plain HTTP.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from iron_worker import IronWorker, Task
from requests.exceptions import HTTPError

from tests.acceptance.conftest import Running

HELLO = """\
import json, sys
args = sys.argv
payload = json.load(open(args[args.index("-payload") + 1]))
print("hello", payload.get("name", "nobody"))
"""
SLEEPER = "import time\ntime.sleep(30)\n"

pytestmark = pytest.mark.slow


def last_line(text: str) -> str:
    """The task's last line (the runner may prepend notes, e.g. a sandbox warning)."""
    return text.strip().splitlines()[-1]


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll `check` until it holds (the state lives in another process)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def upload(worker: IronWorker, tmp_path: Path, name: str, source: str) -> object:
    """Upload one Python file as code `name` through the client's own zip builder."""
    folder = tmp_path / f"src_{name}"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(source)
    return worker.upload(str(folder / f"{name}.py"), name=name)


@pytest.fixture
def worker(iron_env: Running) -> IronWorker:
    """A client configured only through IRON_* variables."""
    return IronWorker()


def test_upload_list_get_revisions(worker: IronWorker, tmp_path: Path) -> None:
    first = upload(worker, tmp_path, "hello", HELLO)
    second = upload(worker, tmp_path, "hello", HELLO + "\n")
    assert first.id
    assert first.id == second.id
    assert (first.name, first.revision, second.revision) == ("hello", 1, 2)
    assert "hello" in [c.name for c in worker.codes()]
    code = worker.code(first.id)
    assert (code.name, code.revision, code.runtime) == ("hello", 2, "python")
    assert code.latest_change is not None
    revisions = worker.revisions(first.id)
    assert [r.revision for r in revisions] == [2, 1]


def test_python3_repr_encoded_upload_is_stored_as_the_real_zip(
    worker: IronWorker, iron_env: Running, tmp_path: Path
) -> None:
    code = upload(worker, tmp_path, "roundtrip", HELLO)
    resp = httpx.get(
        f"{iron_env.server.url}/2/projects/{iron_env.project.id}/codes/{code.id}/download",
        headers={"Authorization": f"OAuth {iron_env.project.token}"},
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/zip"
    assert resp.headers["content-disposition"] == "filename=roundtrip_1.zip"
    with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
        assert zf.read("roundtrip.py").decode() == HELLO


def test_download_is_broken_in_the_client_itself(
    worker: IronWorker, tmp_path: Path
) -> None:
    code = upload(worker, tmp_path, "dl", HELLO)
    with pytest.raises(AttributeError, match="getheader"):
        worker.download(code.id)


def test_run_queues_waits_and_returns_stdout(
    worker: IronWorker, tmp_path: Path
) -> None:
    upload(worker, tmp_path, "hello", HELLO)
    assert (
        last_line(worker.run(code_name="hello", payload={"name": "iron"}))
        == "hello iron"
    )


def test_queue_get_log_stdout_and_wait(worker: IronWorker, tmp_path: Path) -> None:
    upload(worker, tmp_path, "hello", HELLO)
    task = worker.queue(code_name="hello", payload={"name": "log"}, label="lbl")
    assert isinstance(task, Task)
    assert task.id
    done = worker.wait_for_task(task)
    assert done.status == "complete"
    assert done.payload == {"name": "log"}
    assert isinstance(done.timeout, int)
    assert done.code_name == "hello"
    assert done.label == "lbl"
    assert last_line(worker.wait_for_task_log(done)) == "hello log"
    assert last_line(worker.wait_for_task_stdout(done)) == "hello log"
    assert last_line(worker.log(done.id)) == "hello log"
    assert last_line(worker.stdout(done)) == "hello log"


def test_queue_many_and_list_with_filters(worker: IronWorker, tmp_path: Path) -> None:
    upload(worker, tmp_path, "hello", HELLO)
    tasks = worker.queue(
        tasks=[Task(code_name="hello", payload={"name": str(i)}) for i in range(3)]
    )
    assert len(tasks) == 3
    ids = {t.id for t in tasks}
    for t in tasks:
        worker.wait_for_task(t)
    listed = {t.id for t in worker.tasks()}
    assert ids <= listed  # newest first: just-queued tasks are on the first page
    assert ids <= {t.id for t in worker.tasks(complete=True)}
    assert not ids & {t.id for t in worker.tasks(queued=True, cancelled=True)}
    assert ids <= {t.id for t in worker.tasks_by_code_name("hello")}
    assert ids <= {t.id for t in worker.tasks(code_name="hello", from_time=0)}
    assert len(worker.tasks(per_page=2)) == 2


def test_progress_retry_and_cancel(worker: IronWorker, tmp_path: Path) -> None:
    upload(worker, tmp_path, "sleeper", SLEEPER)
    task = worker.queue(code_name="sleeper", payload="{}")
    assert worker.setProgress(task.id, 40, "almost")["msg"] == "Progress set"
    retried = worker.retry(task.id)
    assert retried["msg"] == "Queued up"
    copy_id = retried["tasks"][0]["id"]
    assert copy_id != task.id
    for task_id in (task.id, copy_id):
        assert worker.cancel(task_id) is True
        assert worker.cancel(task_id) is True  # idempotent
        wait_until(lambda tid=task_id: worker.task(tid).status == "cancelled")
    assert task.id in {t.id for t in worker.tasks(cancelled=True)}


def test_schedules_create_get_list_cancel(worker: IronWorker, tmp_path: Path) -> None:
    upload(worker, tmp_path, "hello", HELLO)
    start = datetime.now(timezone.utc) + timedelta(hours=1)  # noqa: UP017 - as users write it
    scheduled = worker.queue(
        code_name="hello", payload={"name": "cron"}, run_every=3600, start_at=start
    )
    assert scheduled.scheduled
    assert scheduled.id
    info = worker.task(scheduled)
    assert info.run_every == 3600
    assert info.code_name == "hello"
    assert abs((info.start_at - start).total_seconds()) < 1
    assert scheduled.id in {s.id for s in worker.tasks(scheduled=True)}
    assert worker.cancel(scheduled) is True
    listed = {s.id: s for s in worker.tasks(scheduled=True)}
    assert listed[scheduled.id].status == "cancelled"


def test_schedule_run_every_under_a_minute_is_refused(
    worker: IronWorker, tmp_path: Path
) -> None:
    upload(worker, tmp_path, "hello", HELLO)
    with pytest.raises(HTTPError) as err:
        worker.queue(code_name="hello", payload="{}", run_every=10)
    assert err.value.response.status_code == 400


def test_delete_code(worker: IronWorker, tmp_path: Path) -> None:
    code = upload(worker, tmp_path, "gone", HELLO)
    assert worker.deleteCode(code.id) is True
    with pytest.raises(HTTPError) as err:
        worker.code(code.id)
    assert err.value.response.status_code == 404


def test_another_projects_objects_are_not_found(
    worker: IronWorker, iron_env: Running, tmp_path: Path
) -> None:
    code = upload(worker, tmp_path, "hello", HELLO)
    task = worker.queue(code_name="hello", payload="{}")
    other = IronWorker(project_id=iron_env.other.id, token=iron_env.other.token)
    for call in (
        lambda: other.task(task.id),
        lambda: other.code(code.id),
        lambda: other.log(task.id),
    ):
        with pytest.raises(HTTPError) as err:
            call()
        assert err.value.response.status_code == 404
    assert task.id not in {t.id for t in other.tasks()}
    wrong = IronWorker(project_id=iron_env.other.id, token=iron_env.project.token)
    with pytest.raises(HTTPError) as err:
        wrong.codes()
    assert err.value.response.status_code == 401
