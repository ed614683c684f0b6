"""Codes that name a Docker image: a container where an engine answers, the usual
launcher (with a note in the task log) where none does."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workhorse import App, TaskStatus
from workhorse.client import CodePackage
from workhorse.settings import Settings
from workhorse.worker.runners.docker import engine_version
from workhorse.worker.worker import Worker

IMAGE = "busybox:1.36"
SCRIPT = (
    'echo "in $(hostname) as $(id -u) dir=$TASK_DIR payload=$(cat "$PAYLOAD_FILE")"\n'
)


def _upload(app: App, tmp_path: Path, **options: Any) -> None:
    src = tmp_path / "pkg"
    src.mkdir(exist_ok=True)
    (src / "run.sh").write_text(SCRIPT)
    app.client.upload_directory(
        src, CodePackage(name="boxed", command="sh run.sh", image=IMAGE, **options)
    )


@pytest.mark.skipif(engine_version() is None, reason="no Docker engine reachable")
def test_an_image_code_runs_in_a_container_with_the_contract(
    app: App, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    _upload(app, tmp_path, memory="64M")
    start_worker(app)
    task = app.queue("boxed", '{"n":1}').wait(300)
    assert task.status == TaskStatus.COMPLETE, task.log
    assert 'dir=/task payload={"n":1}' in task.log
    assert "as 65534" in task.log


@pytest.mark.skipif(engine_version() is None, reason="no Docker engine reachable")
def test_a_container_over_its_memory_limit_is_killed(
    app: App, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    src = tmp_path / "pkg"
    src.mkdir()
    (src / "run.sh").write_text("head -c 200m /dev/zero | tail > /dev/null\n")
    app.client.upload_directory(
        src, CodePackage(name="hog", command="sh run.sh", image=IMAGE, memory="32M")
    )
    start_worker(app)
    task = app.queue("hog").wait(300)
    assert task.status == TaskStatus.KILLED
    assert "memory limit" in (task.error or "")


@pytest.mark.skipif(engine_version() is not None, reason="a Docker engine is reachable")
def test_without_an_engine_an_image_code_runs_in_the_usual_launcher_with_a_note(
    settings: Settings, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    app = App(settings=dataclasses.replace(settings, sandbox="auto"))
    try:
        _upload(app, tmp_path)
        worker = start_worker(app)
        task = app.queue("boxed", "{}").wait(60)
        assert task.status == TaskStatus.COMPLETE, task.log
        assert (
            f"image '{IMAGE}' requested, but no Docker engine is reachable" in task.log
        )
        assert f"running in {worker.process.launcher.name} instead" in task.log
    finally:
        app.close()
