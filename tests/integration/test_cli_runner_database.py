"""Which database `workhorse runner --app` runs on: the command line's when it
names one, the app's own otherwise, and an error when the two disagree."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from workhorse.cli.common import Context
from workhorse.cli.runner import _worker_for
from workhorse.errors import InvalidInput
from workhorse.worker.worker import WorkerConfig

_names = itertools.count()


def app_module(tmp_path: Path, app_line: str) -> str:
    """A module in `tmp_path` defining `app`; returns module:attribute."""
    name = f"runner_db_app_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(f"import workhorse\napp = {app_line}\n")
    return f"{name}:app"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # load_app imports from the working directory
    monkeypatch.delenv("WORKHORSE_DATABASE_URL", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))


def config(tmp_path: Path) -> WorkerConfig:
    return WorkerConfig(cache_dir=tmp_path / "cache", packages=False)


def test_the_command_line_database_reaches_an_app_that_names_none(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'given.db'}"
    worker = _worker_for(
        Context(url, "p"), app_module(tmp_path, "workhorse.App()"), config(tmp_path)
    )
    assert worker.storage.settings.database_url == url
    worker.storage.close()


def test_an_app_bound_to_another_database_is_an_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'given.db'}"
    other = f"sqlite:///{tmp_path / 'other.db'}"
    spec = app_module(tmp_path, f"workhorse.App({other!r})")
    with pytest.raises(InvalidInput, match="name one database"):
        _worker_for(Context(url, "p"), spec, config(tmp_path))


def test_without_one_on_the_command_line_the_app_s_database_is_used(
    tmp_path: Path,
) -> None:
    own = f"sqlite:///{tmp_path / 'own.db'}"
    ctx = Context(None, "p")
    worker = _worker_for(
        ctx, app_module(tmp_path, f"workhorse.App({own!r})"), config(tmp_path)
    )
    assert worker.storage.settings.database_url == own
    assert ctx.settings.database_url == own
    worker.storage.close()
