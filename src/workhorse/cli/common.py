"""What every command shares: settings from flags, a client, error reporting, tables."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from workhorse.client import DEFAULT_PROJECT, Client
from workhorse.errors import InvalidInput, NotFound, StorageUnavailable, WorkhorseError
from workhorse.settings import Settings
from workhorse.storage import Storage, open_storage

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A Rich console made on first use, so that commands which print no tables or
    markup (a runner) start without loading Rich."""

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return getattr(self._console, name)


console = cast("Console", _LazyConsole())
err_console = cast("Console", _LazyConsole(stderr=True))
F = TypeVar("F", bound=Callable[..., Any])


class Context:
    """Lazily opened storage shared by one command invocation."""

    def __init__(self, database_url: str | None, project_id: str) -> None:
        self.settings = Settings.from_env(database_url=database_url)
        # Named by --database-url or WORKHORSE_DATABASE_URL (not the default).
        self.database_url_given = database_url is not None
        self.project_id = project_id
        self._storage: Storage | None = None

    @property
    def storage(self) -> Storage:
        """Open (and migrate) on first use."""
        if self._storage is None:
            self._storage = open_storage(self.settings, migrate=True)
        return self._storage

    @property
    def client(self) -> Client:
        """A client for the selected project."""
        return Client(self.storage, project_id=self.project_id, settings=self.settings)

    def close(self) -> None:
        """Close the storage if it was opened."""
        if self._storage is not None:
            self._storage.close()


pass_ctx = click.make_pass_decorator(Context)


def handle_errors(fn: F) -> F:
    """Turn Workhorse errors into a one-line message and exit code 1 (2 for bad input)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (InvalidInput, NotFound) as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            sys.exit(2)
        except (StorageUnavailable, WorkhorseError) as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def fmt_time(epoch: float | None) -> str:
    """Epoch seconds as a short UTC time."""
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def table(
    title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Print a Rich table. Ids are never cut short: ids (columns named `id` or
    `..._id`) keep one line at their full width, to be copied from here; other
    values wrap (or, a word too long for its column, are shortened) to make room."""
    from rich.table import Table

    cells = [["-" if v is None else str(v) for v in row] for row in rows]
    t = Table(title=title, header_style="bold")
    for i, c in enumerate(columns):
        if c == "id" or c.endswith("_id"):
            width = max((len(row[i]) for row in cells), default=len(c))
            t.add_column(c, no_wrap=True, min_width=max(width, len(c)))
        else:
            t.add_column(c)
    for row in cells:
        t.add_row(*row)
    console.print(t)


def emit_json(data: Any) -> None:
    """Print machine-readable output."""
    click.echo(json.dumps(data, indent=2, default=str))


__all__ = ["DEFAULT_PROJECT"]
