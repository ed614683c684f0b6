"""`workhorse project create|list` and `workhorse token create|list|revoke`.

Tokens are shown once, when created; the database keeps only their SHA-256 hash.
Whoever can run these commands can read the database, so they need no token.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from workhorse.cli.common import (
    Context,
    console,
    emit_json,
    fmt_time,
    handle_errors,
    pass_ctx,
    table,
)
from workhorse.client import DEFAULT_PROJECT
from workhorse.errors import InvalidInput, NotFound
from workhorse.storage import Storage

DEFAULT_PROJECT_NAME = "Default project"


def iron_json(
    project_id: str, token: str, host: str = "127.0.0.1", port: int = 8080
) -> str:
    """An iron.json that works for the Python, Go and Ruby Iron clients."""
    return json.dumps(
        {
            "project_id": project_id,
            "token": token,
            "host": host,
            "port": port,
            "protocol": "http",
            "scheme": "http",
        },
        indent=2,
    )


def bootstrap(storage: Storage) -> tuple[str, str] | None:
    """First start: create the `default` project and one token when no token exists.

    Returns (project id, token) when it minted the token, else None: a token is
    created and shown once, never re-shown or re-created on later starts.
    """

    def work(tx):  # type: ignore[no-untyped-def]
        if tx.projects.active_token_count():
            return None
        tx.projects.create(DEFAULT_PROJECT_NAME, project_id=DEFAULT_PROJECT)
        _, token = tx.projects.create_token(
            DEFAULT_PROJECT, name="created by first start"
        )
        return DEFAULT_PROJECT, token

    result: tuple[str, str] | None = storage.run(work)
    return result


@click.group()
def project() -> None:
    """Projects: each has its own codes, tasks, queues and tokens."""


@project.command("create")
@click.argument("name")
@click.option(
    "--id", "project_id", default=None, help="choose the id (default: a new random id)"
)
@pass_ctx
@handle_errors
def create_project(ctx: Context, name: str, project_id: str | None) -> None:
    """Create project NAME and a first token for it."""

    def work(tx):  # type: ignore[no-untyped-def]
        if project_id is not None and tx.projects.get(project_id) is not None:
            raise InvalidInput(f"project {project_id!r} already exists")
        created = tx.projects.create(name, project_id=project_id)
        _, token = tx.projects.create_token(created.id, name="first token")
        return created, token

    created, token = ctx.storage.run(work)
    click.echo(f"project_id: {created.id}")
    click.echo(f"token:      {token}")
    console.print("[dim]The token is shown only now; store it safely.[/dim]")


@project.command("list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@pass_ctx
@handle_errors
def list_projects(ctx: Context, as_json: bool) -> None:
    """Every project with its number of active tokens."""
    projects = ctx.storage.run(lambda tx: tx.projects.list(), write=False)
    if as_json:
        emit_json([asdict(p) for p in projects])
        return
    table(
        None,
        ["id", "name", "tokens", "created"],
        [[p.id, p.name, p.tokens, fmt_time(p.created_at)] for p in projects],
    )


@click.group()
def token() -> None:
    """API tokens (sent as 'Authorization: OAuth <token>' or ?oauth=)."""


@token.command("create")
@click.option("--name", default="", help="a label to recognise the token by")
@click.option(
    "--json", "as_json", is_flag=True, help="print an iron.json for this token"
)
@pass_ctx
@handle_errors
def create_token(ctx: Context, name: str, as_json: bool) -> None:
    """Mint a token for the selected project (--project, default: default)."""

    def work(tx):  # type: ignore[no-untyped-def]
        if tx.projects.get(ctx.project_id) is None:
            if ctx.project_id != DEFAULT_PROJECT:
                raise NotFound(
                    f"no project {ctx.project_id!r}: "
                    "create it with 'workhorse project create'"
                )
            tx.projects.create(DEFAULT_PROJECT_NAME, project_id=DEFAULT_PROJECT)
        return tx.projects.create_token(ctx.project_id, name=name)

    info, secret = ctx.storage.run(work)
    if as_json:
        click.echo(iron_json(ctx.project_id, secret))
        return
    click.echo(f"token_id:   {info.id}")
    click.echo(f"project_id: {info.project_id}")
    click.echo(f"token:      {secret}")
    console.print("[dim]The token is shown only now; store it safely.[/dim]")


@token.command("list")
@click.option("--all", "all_projects", is_flag=True, help="tokens of every project")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@pass_ctx
@handle_errors
def list_tokens(ctx: Context, all_projects: bool, as_json: bool) -> None:
    """Tokens of the selected project (never the tokens themselves)."""
    wanted = None if all_projects else ctx.project_id
    tokens = ctx.storage.run(lambda tx: tx.projects.list_tokens(wanted), write=False)
    if as_json:
        emit_json([asdict(t) for t in tokens])
        return
    table(
        None,
        ["token id", "project", "name", "created", "revoked"],
        [
            [t.id, t.project_id, t.name, fmt_time(t.created_at), fmt_time(t.revoked_at)]
            for t in tokens
        ],
    )


@token.command("revoke")
@click.argument("token_id")
@pass_ctx
@handle_errors
def revoke_token(ctx: Context, token_id: str) -> None:
    """Revoke TOKEN_ID; running API servers refuse it within a few seconds."""
    if not ctx.storage.run(lambda tx: tx.projects.revoke_token(token_id)):
        raise NotFound(f"no active token with id {token_id!r}")
    click.echo(f"token {token_id} revoked")
