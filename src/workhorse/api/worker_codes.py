"""IronWorker v2 code packages: upload, list, get, revisions, download, pause."""

from __future__ import annotations

import io
import json
import re
import shlex
import zipfile
from typing import Any

from starlette.responses import Response

from workhorse.api.endpoint import Ctx, json_response, msg
from workhorse.api.errors import ApiError
from workhorse.api.multipart import boundary_of, decode_file, parse
from workhorse.api.wire import as_int, as_str, code_json, required_str, revision_json
from workhorse.client import RUNTIMES, CodePackage
from workhorse.domain.task import TaskStatus
from workhorse.errors import NotFound

# Iron runtimes and how a zip-era package's `file_name` is started under each.
LAUNCHERS = {
    "python": "python3",
    "sh": "sh",
    "ruby": "ruby",
    "node": "node",
    "php": "php",
    "binary": "",
}
CANCEL_BATCH = 500
# Resource limits a package may set (names of `CodePackage` fields).
LIMITS = ("memory", "cpu", "processes", "open_files", "disk")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _code_row(ctx: Ctx, code_id: str) -> dict[str, Any]:
    row = ctx.storage.run(
        lambda tx: tx.codes.get_by_id(ctx.project_id, code_id), write=False
    )
    if row is None:
        raise ApiError(404, "Code not found")
    return row


def _command(data: dict[str, Any], runtime: str) -> str:
    command = data.get("command")
    if isinstance(command, list):
        command = shlex.join(str(c) for c in command)
    if isinstance(command, str) and command.strip():
        return command
    file_name = data.get("file_name")
    if isinstance(file_name, str) and file_name.strip():
        launcher = LAUNCHERS.get(runtime, "sh")
        quoted = shlex.quote(file_name.strip())
        return f"{launcher} {quoted}" if launcher else f"./{quoted}"
    raise ApiError(400, "command or file_name is required")


def _rate(raw: Any) -> str | float | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ApiError(
            400, "rate_limit must be like '10/s', '100/m' or a number per second"
        )
    return raw


def package_from(data: dict[str, Any]) -> CodePackage:
    """A code package from the upload's `data` JSON (Iron field names)."""
    name = required_str(data, "name")
    iron_runtime = str(data.get("runtime") or "sh").lower()
    runtime = iron_runtime if iron_runtime in RUNTIMES else "binary"
    config = data.get("config")
    if config is not None and not isinstance(config, str):
        config = json.dumps(config)
    env = data.get("env_vars")
    if env is not None and (
        not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values())
    ):
        raise ApiError(400, "env_vars must be an object of strings")
    concurrency = as_int(data.get("max_concurrency"), "max_concurrency")
    priority = data.get("default_priority", data.get("priority"))
    return CodePackage(
        name=name,
        command=_command(data, iron_runtime),
        runtime=runtime,
        max_concurrency=concurrency if concurrency and concurrency > 0 else None,
        rate_limit=_rate(data.get("rate_limit")),
        retries=as_int(data.get("retries"), "retries") or 0,
        retries_delay=as_int(data.get("retries_delay"), "retries_delay") or 0,
        priority=max(as_int(priority, "default_priority") or 0, 0),
        timeout=as_int(data.get("timeout"), "timeout") or 3600,
        env=env,
        config=config,
        image=as_str(data.get("image"), "image") or None,
        network=bool(data.get("network", False)),
        **{k: data[k] for k in LIMITS if data.get(k) is not None},
    )


def empty_zip() -> bytes:
    """An archive with nothing in it (packages uploaded without a file)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w"):
        pass
    return buf.getvalue()


def split_upload(raw: bytes, ctype: str) -> tuple[dict[str, Any], bytes]:
    """(the `data` JSON, the zip) of an upload body: multipart, or JSON alone."""
    if ctype.split(";", 1)[0].strip().lower() == "application/json":
        data_raw, archive = raw, empty_zip()
    else:
        parts = parse(raw, boundary_of(ctype))
        if "data" not in parts:
            raise ApiError(400, "the upload needs a 'data' field with the code's JSON")
        data_raw = parts["data"].data
        file = parts.get("file")
        archive = (
            decode_file(file.data) if file is not None and file.data else empty_zip()
        )
    try:
        data = json.loads(data_raw or b"{}")
    except ValueError:
        raise ApiError(400, "the 'data' field must be JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the 'data' field must be a JSON object")
    return data, archive


async def upload(ctx: Ctx) -> Response:
    """POST /codes: a new revision of a package; answers the code object plus msg."""
    raw = await ctx.body(ctx.config.max_upload_bytes)
    ctype = ctx.request.headers.get("content-type", "")
    data, archive = await ctx.run(
        split_upload, raw, ctype
    )  # large bodies: off the loop
    package = package_from(data)
    row = await ctx.run(ctx.client.upload, package, archive)
    return json_response({**code_json(row), "msg": "Upload successful."})


async def list_codes(ctx: Ctx) -> Response:
    """GET /codes?page&per_page."""
    per_page = ctx.query_int("per_page", 30, 1, 100)
    offset = ctx.query_int("page", 0, 0, 100) * per_page
    rows = await ctx.run(
        ctx.storage.run,
        lambda tx: tx.codes.list(ctx.project_id, limit=per_page, offset=offset),
        write=False,
    )
    return json_response({"codes": [code_json(r) for r in rows]})


def _code_with_checksum(ctx: Ctx, code_id: str) -> dict[str, Any]:
    row = _code_row(ctx, code_id)
    revs = ctx.storage.run(
        lambda tx: tx.codes.list_revisions(ctx.project_id, row["name"], limit=1),
        write=False,
    )
    return code_json(row, revs[0]["checksum"] if revs else None)


async def get_code(ctx: Ctx) -> Response:
    """GET /codes/{code_id}: the bare code object."""
    return json_response(await ctx.run(_code_with_checksum, ctx, ctx.path("code_id")))


def _delete(ctx: Ctx, code_id: str) -> None:
    row = _code_row(ctx, code_id)
    try:
        ctx.client.delete_code(row["name"])
    except NotFound:
        raise ApiError(404, "Code not found") from None


async def delete_code(ctx: Ctx) -> Response:
    """DELETE /codes/{code_id}."""
    await ctx.run(_delete, ctx, ctx.path("code_id"))
    return msg("Deleted")


async def revisions(ctx: Ctx) -> Response:
    """GET /codes/{code_id}/revisions?page&per_page, newest first."""
    per_page = ctx.query_int("per_page", 30, 1, 100)
    offset = ctx.query_int("page", 0, 0, 100) * per_page

    def read() -> list[dict[str, Any]]:
        row = _code_row(ctx, ctx.path("code_id"))
        revs = ctx.storage.run(
            lambda tx: tx.codes.list_revisions(
                ctx.project_id, row["name"], limit=per_page, offset=offset
            ),
            write=False,
        )
        return [revision_json(row, r) for r in revs]

    return json_response({"revisions": await ctx.run(read)})


async def download(ctx: Ctx) -> Response:
    """GET /codes/{code_id}/download?revision=N: the zip."""
    wanted = ctx.query_int("revision", 0, 0, 2**31 - 1)

    def read() -> tuple[str, int, bytes]:
        row = _code_row(ctx, ctx.path("code_id"))
        try:
            rev, archive = ctx.client.download(row["name"], wanted or None)
        except NotFound:
            raise ApiError(404, "Revision not found") from None
        return row["name"], rev, archive

    name, rev, archive = await ctx.run(read)
    filename = f"{_SAFE.sub('_', name)}_{rev}.zip"
    return Response(
        archive,
        media_type="application/zip",
        headers={"Content-Disposition": f"filename={filename}"},
    )


async def stats(ctx: Ctx) -> Response:
    """GET /codes/{code_id}/stats: task counts per status (all time)."""

    def read() -> dict[str, int]:
        row = _code_row(ctx, ctx.path("code_id"))
        return {"preparing": 0, **ctx.client.code_stats(row["name"])}

    return json_response(await ctx.run(read))


def _set_paused(ctx: Ctx, paused: bool) -> None:
    row = _code_row(ctx, ctx.path("code_id"))
    ctx.client.set_paused(row["name"], paused)


async def pause(ctx: Ctx) -> Response:
    """POST /codes/{code_id}/pause_task_queue."""
    await ctx.run(_set_paused, ctx, True)
    return msg("Paused")


async def resume(ctx: Ctx) -> Response:
    """POST /codes/{code_id}/resume_task_queue."""
    await ctx.run(_set_paused, ctx, False)
    return msg("Resumed")


def _cancel_all(ctx: Ctx) -> int:
    row = _code_row(ctx, ctx.path("code_id"))
    cancelled = 0
    for status in (TaskStatus.QUEUED, TaskStatus.RUNNING):
        before: int | None = None
        while True:
            batch = ctx.client.list(
                code_name=row["name"],
                status=status.value,
                before_seq=before,
                limit=CANCEL_BATCH,
            )
            for _, task in batch:
                ctx.client.cancel(task.id)
                cancelled += 1
            if len(batch) < CANCEL_BATCH:
                break
            before = batch[-1][0]
    return cancelled


async def cancel_all(ctx: Ctx) -> Response:
    """POST /codes/{code_id}/cancel_all: cancel its queued and running tasks."""
    count = await ctx.run(_cancel_all, ctx)
    return json_response({"msg": "Cancelled", "cancelled_count": count})
