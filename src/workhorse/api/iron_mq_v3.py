"""IronMQ v3 route table, on `workhorse.queues.MessageQueues`.

Queue names in paths are percent-decoded (the Go and Ruby clients encode them;
the Python client does not). Errors keep the core's messages, which are Iron's
(`Queue not found`, `Reservation timed out`); a stale reservation answers 403.
"""

from __future__ import annotations

from collections.abc import Sequence

from workhorse.api import mq_messages as messages
from workhorse.api import mq_queues as queues
from workhorse.api.endpoint import Auth, Handler

Q = "/3/projects/{project_id}/queues/{queue_name}"


def routes() -> Sequence[tuple[str, Sequence[str], Handler, Auth]]:
    """(path, methods, handler, auth) for every IronMQ v3 endpoint."""
    return [
        (f"{Q}/messages", ["POST"], messages.post, "project"),
        (f"{Q}/reservations", ["POST"], messages.reserve, "project"),
        ("/3/projects/{project_id}/queues", ["GET"], queues.list_queues, "project"),
        (Q, ["GET"], queues.get_queue, "project"),
        (Q, ["PUT"], queues.create_queue, "project"),
        (Q, ["PATCH"], queues.update_queue, "project"),
        (Q, ["DELETE"], queues.delete_queue, "project"),
        (f"{Q}/subscribers", ["POST"], queues.add_subscribers, "project"),
        (f"{Q}/subscribers", ["PUT"], queues.replace_subscribers, "project"),
        (f"{Q}/subscribers", ["DELETE"], queues.remove_subscribers, "project"),
        (f"{Q}/alerts", ["POST"], queues.add_alerts, "project"),
        (f"{Q}/alerts", ["PUT"], queues.replace_alerts, "project"),
        (f"{Q}/alerts", ["DELETE"], queues.remove_alerts, "project"),
        (f"{Q}/alerts/{{alert_id}}", ["DELETE"], queues.remove_alert, "project"),
        (f"{Q}/webhook", ["POST"], queues.webhook, "project"),
        (f"{Q}/messages", ["GET"], messages.peek, "project"),
        (f"{Q}/messages", ["DELETE"], messages.delete_or_clear, "project"),
        (f"{Q}/messages/{{message_id}}", ["GET"], messages.get_message, "project"),
        (
            f"{Q}/messages/{{message_id}}",
            ["DELETE"],
            messages.delete_message,
            "project",
        ),
        (f"{Q}/messages/{{message_id}}/touch", ["POST"], messages.touch, "project"),
        (f"{Q}/messages/{{message_id}}/release", ["POST"], messages.release, "project"),
        (
            f"{Q}/messages/{{message_id}}/subscribers",
            ["GET"],
            messages.push_statuses,
            "project",
        ),
    ]
