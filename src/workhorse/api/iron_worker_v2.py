"""IronWorker v2 route table, plus the root-level project, stack and cluster routes."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.responses import Response

from workhorse.api import worker_codes as codes
from workhorse.api import worker_schedules as schedules
from workhorse.api import worker_tasks as tasks
from workhorse.api.endpoint import Auth, Ctx, Handler, json_response
from workhorse.api.wire import rfc3339
from workhorse.storage.projects import Project

P = "/2/projects/{project_id}"
STACKS = ["python-3", "sh", "node", "ruby", "binary"]


async def get_project(ctx: Ctx) -> Response:
    """GET /2/projects/{project_id}: at least `name` (ironcli reads it first)."""
    project: Project | None = await ctx.run(
        ctx.storage.run, lambda tx: tx.projects.get(ctx.project_id), write=False
    )
    name = project.name if project else ctx.project_id
    created = rfc3339(project.created_at) if project else None
    body = {"id": ctx.project_id, "name": name, "type": "workhorse", "status": "active"}
    if created:
        body["created_at"] = created
    return json_response(body)


async def stacks(ctx: Ctx) -> Response:
    """GET /2/stacks: a bare list of stack names (runtimes a package may use)."""
    return json_response(STACKS)


def _cluster() -> dict[str, object]:
    return {
        "id": "default",
        "name": "default",
        "memory": 0,
        "disk_space": 0,
        "runners": 0,
    }


async def clusters(ctx: Ctx) -> Response:
    """GET /2/clusters: the one built-in cluster, `default`."""
    return json_response({"clusters": [_cluster()]})


async def cluster(ctx: Ctx) -> Response:
    """GET /2/clusters/{cluster_id}."""
    if ctx.path("cluster_id") != "default":
        return json_response({"msg": "Cluster not found"}, 404)
    return json_response({"cluster": _cluster()})


def routes() -> Sequence[tuple[str, Sequence[str], Handler, Auth]]:
    """(path, methods, handler, auth) for every IronWorker v2 endpoint."""
    table: list[tuple[str, Sequence[str], Handler, Auth]] = [
        (f"{P}/tasks", ["POST"], tasks.queue, "project"),
        (f"{P}/tasks/{{task_id}}", ["GET"], tasks.get_task, "project"),
        ("/2/projects/{project_id}", ["GET"], get_project, "project"),
        ("/2/stacks", ["GET"], stacks, "token"),
        ("/2/clusters", ["GET"], clusters, "token"),
        ("/2/clusters/{cluster_id}", ["GET"], cluster, "token"),
        (f"{P}/codes", ["GET"], codes.list_codes, "project"),
        (f"{P}/codes", ["POST"], codes.upload, "project"),
        (f"{P}/codes/{{code_id}}", ["GET"], codes.get_code, "project"),
        (f"{P}/codes/{{code_id}}", ["DELETE"], codes.delete_code, "project"),
        (f"{P}/codes/{{code_id}}/revisions", ["GET"], codes.revisions, "project"),
        (f"{P}/codes/{{code_id}}/download", ["GET"], codes.download, "project"),
        (f"{P}/codes/{{code_id}}/stats", ["GET"], codes.stats, "project"),
        (f"{P}/codes/{{code_id}}/pause_task_queue", ["POST"], codes.pause, "project"),
        (f"{P}/codes/{{code_id}}/resume_task_queue", ["POST"], codes.resume, "project"),
        (f"{P}/codes/{{code_id}}/cancel_all", ["POST"], codes.cancel_all, "project"),
        (f"{P}/tasks", ["GET"], tasks.list_tasks, "project"),
        (f"{P}/tasks/webhook", ["POST"], tasks.webhook, "project"),
        (f"{P}/tasks/{{task_id}}/log", ["GET"], tasks.log, "project"),
        (f"{P}/tasks/{{task_id}}/outlog", ["GET"], tasks.log, "project"),
        (f"{P}/tasks/{{task_id}}/cancel", ["POST"], tasks.cancel, "project"),
        (f"{P}/tasks/{{task_id}}/progress", ["POST"], tasks.progress, "project"),
        (f"{P}/tasks/{{task_id}}/retry", ["POST"], tasks.retry, "project"),
        (f"{P}/schedules", ["GET"], schedules.list_schedules, "project"),
        (f"{P}/schedules", ["POST"], schedules.create, "project"),
        (f"{P}/schedules/{{schedule_id}}", ["GET"], schedules.get_schedule, "project"),
        (f"{P}/schedules/{{schedule_id}}", ["PUT"], schedules.update, "project"),
        (
            f"{P}/schedules/{{schedule_id}}/cancel",
            ["POST"],
            schedules.cancel,
            "project",
        ),
    ]
    return table
