"""OpenAPI paths and schemas of IronMQ v3 (/3)."""

from __future__ import annotations

from workhorse.api.openapi import (
    ERROR_CODES,
    PROJECT,
    Schema,
    nullable,
    obj,
    op,
    path_param,
    query,
    ref,
)

Q = "/3/projects/{project_id}/queues/{queue_name}"
STR = {"type": "string"}
INT = {"type": "integer"}
QUEUE = path_param("queue_name")
MESSAGE_ID = path_param("message_id")
WITH_403 = (*ERROR_CODES, 403)


def _settings() -> Schema:
    subscriber = obj(
        {
            "name": STR,
            "url": STR,
            "headers": {"type": "object", "additionalProperties": STR},
        },
        ["url"],
    )
    alert = obj(
        {
            "id": STR,
            "type": STR,
            "direction": STR,
            "trigger": INT,
            "queue": STR,
            "snooze": INT,
        },
        ["trigger", "queue"],
    )
    return obj(
        {
            "type": {"type": "string", "enum": ["pull", "multicast", "unicast"]},
            "message_timeout": INT,
            "message_expiration": INT,
            "push": obj(
                {
                    "subscribers": {"type": "array", "items": subscriber},
                    "retries": INT,
                    "retries_delay": INT,
                    "error_queue": STR,
                }
            ),
            "dead_letter": obj({"queue_name": STR, "max_reservations": INT}),
            "alerts": {"type": "array", "items": alert},
        }
    )


def mq_schemas() -> dict[str, Schema]:
    """Component schemas of the MQ API."""
    queue = _settings()
    queue["properties"].update(
        {"project_id": STR, "name": STR, "id": STR, "size": INT, "total_messages": INT}
    )
    queue["required"] = ["project_id", "name", "id", "type"]
    return {
        "QueueSettings": _settings(),
        "Queue": queue,
        "QueueEnvelope": obj({"queue": ref("Queue")}, ["queue"]),
        "QueueChange": obj({"queue": ref("QueueSettings")}),
        "Message": obj(
            {"id": STR, "body": STR, "reserved_count": INT, "reservation_id": STR},
            ["id", "body", "reserved_count"],
        ),
        "Messages": obj(
            {"messages": {"type": "array", "items": ref("Message")}}, ["messages"]
        ),
        "NewMessages": obj(
            {
                "messages": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 100,
                    "items": obj(
                        {
                            "body": STR,
                            "delay": {"type": "number"},
                            "push_headers": {
                                "type": "object",
                                "additionalProperties": STR,
                            },
                        },
                        ["body"],
                    ),
                }
            },
            ["messages"],
        ),
        "Posted": obj(
            {"ids": {"type": "array", "items": STR}, "msg": STR}, ["ids", "msg"]
        ),
        "Subscribers": obj(
            {
                "subscribers": {
                    "type": "array",
                    "minItems": 1,
                    "items": obj(
                        {
                            "name": STR,
                            "url": STR,
                            "headers": {"type": "object", "additionalProperties": STR},
                        }
                    ),
                }
            },
            ["subscribers"],
        ),
    }


def _queue_paths() -> dict[str, Schema]:
    alerts = obj(
        {
            "alerts": {"type": "array", "items": {}},
            "queue": obj({"alerts": {"type": "array", "items": {}}}),
        }
    )
    listing = [
        query("per_page", {"type": "integer", "minimum": 1, "maximum": 100}),
        query("previous", STR),
        query("prefix", STR),
    ]
    return {
        "/3/projects/{project_id}/queues": {
            "parameters": [PROJECT],
            "get": op(
                "List queues by name",
                "queues",
                params=listing,
                ok=obj(
                    {
                        "queues": {
                            "type": "array",
                            "items": obj({"name": STR}, ["name"]),
                        }
                    },
                    ["queues"],
                ),
            ),
        },
        Q: {
            "parameters": [PROJECT, QUEUE],
            "get": op("Get a queue with its size", "queues", ok=ref("QueueEnvelope")),
            "put": op(
                "Create or update a queue",
                "queues",
                body=ref("QueueChange"),
                ok=ref("QueueEnvelope"),
            ),
            "patch": op(
                "Update a queue (alerts are added)",
                "queues",
                body=ref("QueueChange"),
                ok=ref("QueueEnvelope"),
            ),
            "delete": op("Delete a queue and its messages", "queues"),
        },
        f"{Q}/subscribers": {
            "parameters": [PROJECT, QUEUE],
            "post": op("Add push subscribers", "queues", body=ref("Subscribers")),
            "put": op("Replace push subscribers", "queues", body=ref("Subscribers")),
            "delete": op(
                "Remove push subscribers by name", "queues", body=ref("Subscribers")
            ),
        },
        f"{Q}/alerts": {
            "parameters": [PROJECT, QUEUE],
            "post": op("Add alerts", "queues", body=alerts, ok=ref("QueueEnvelope")),
            "put": op("Replace alerts", "queues", body=alerts, ok=ref("QueueEnvelope")),
            "delete": op("Remove alerts by id", "queues", body=alerts),
        },
        f"{Q}/alerts/{{alert_id}}": {
            "parameters": [PROJECT, QUEUE, path_param("alert_id")],
            "delete": op("Remove one alert", "queues"),
        },
        f"{Q}/webhook": {
            "parameters": [PROJECT, QUEUE],
            "post": op(
                "Post the raw body as a message",
                "queues",
                body={"type": "string"},
                body_type="text/plain",
                status=201,
                ok=ref("Posted"),
            ),
        },
    }


def _message_paths() -> dict[str, Schema]:
    reserve = obj(
        {
            "n": nullable("integer", minimum=1, maximum=100),
            "timeout": nullable("number"),
            "wait": nullable("number", minimum=0, maximum=30),
            "delete": nullable("boolean"),
        }
    )
    rid = obj(
        {
            "reservation_id": STR,
            "timeout": nullable("number"),
            "delay": nullable("number"),
        },
        ["reservation_id"],
    )
    return {
        f"{Q}/messages": {
            "parameters": [PROJECT, QUEUE],
            "post": op(
                "Post messages (the queue is created if missing)",
                "messages",
                body=ref("NewMessages"),
                status=201,
                ok=ref("Posted"),
            ),
            "get": op(
                "Peek at the next messages",
                "messages",
                params=[query("n", {"type": "integer", "minimum": 1, "maximum": 100})],
                ok=ref("Messages"),
            ),
            "delete": op(
                "Delete messages by id, or clear the queue with {}",
                "messages",
                body=obj({"ids": {"type": "array", "items": {}}}),
            ),
        },
        f"{Q}/reservations": {
            "parameters": [PROJECT, QUEUE],
            "post": op(
                "Reserve messages (long poll with wait)",
                "messages",
                body=reserve,
                ok=ref("Messages"),
            ),
        },
        f"{Q}/messages/{{message_id}}": {
            "parameters": [PROJECT, QUEUE, MESSAGE_ID],
            "get": op(
                "Get a message",
                "messages",
                ok=obj({"message": ref("Message")}, ["message"]),
            ),
            "delete": op(
                "Delete a message (a reserved one needs its reservation id)",
                "messages",
                errors=WITH_403,
                body=obj(
                    {
                        "reservation_id": nullable("string"),
                        "subscriber_name": nullable("string"),
                    }
                ),
            ),
        },
        f"{Q}/messages/{{message_id}}/touch": {
            "parameters": [PROJECT, QUEUE, MESSAGE_ID],
            "post": op(
                "Extend a reservation (a new reservation id)",
                "messages",
                body=rid,
                errors=WITH_403,
                ok=obj({"reservation_id": STR, "msg": STR}, ["reservation_id", "msg"]),
            ),
        },
        f"{Q}/messages/{{message_id}}/release": {
            "parameters": [PROJECT, QUEUE, MESSAGE_ID],
            "post": op("Release a reservation", "messages", body=rid, errors=WITH_403),
        },
        f"{Q}/messages/{{message_id}}/subscribers": {
            "parameters": [PROJECT, QUEUE, MESSAGE_ID],
            "get": op(
                "Push delivery status per subscriber",
                "messages",
                ok=obj(
                    {"subscribers": {"type": "array", "items": {"type": "object"}}},
                    ["subscribers"],
                ),
            ),
        },
    }


def mq_paths() -> dict[str, Schema]:
    """Every IronMQ v3 path."""
    return {**_queue_paths(), **_message_paths()}
