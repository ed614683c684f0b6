"""The OpenAPI 3.1 document served at /openapi.json, written by hand from small helpers.

Each API has its own paths module (`openapi_worker`, `openapi_mq`); shared shapes
live in `components()`. Every operation documents the errors the pipeline can
produce (400, 401, 404, 406, 413, 429, 503), each as `{"msg": ...}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Schema = dict[str, Any]
ERROR_CODES = (400, 401, 404, 406, 413, 429, 503)
REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad request: malformed JSON or an invalid value",
    401: "Missing or invalid token, or a token of another project",
    403: "Stale reservation",
    404: "No such resource in this project (or an unknown route)",
    406: "The body's Content-Type is not the one required",
    409: "The resource is not in a state that allows this",
    413: "Request body or payload over its limit",
    429: "Rate limit reached; see Retry-After",
    503: "Database briefly unavailable; see Retry-After",
}


def ref(name: str) -> Schema:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str, **extra: Any) -> Schema:
    """A JSON type that may also be null."""
    return {"type": [kind, "null"], **extra}


def obj(
    properties: dict[str, Schema], required: Sequence[str] = (), **extra: Any
) -> Schema:
    """An object schema."""
    schema: Schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    return schema


def path_param(name: str) -> Schema:
    """A required string path parameter."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
    }


def query(name: str, schema: Schema, description: str = "") -> Schema:
    """An optional query parameter."""
    param: Schema = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        param["description"] = description
    return param


PROJECT = path_param("project_id")
PAGE = query(
    "page", {"type": "integer", "minimum": 0, "maximum": 100}, "page number, from 0"
)
PER_PAGE = query(
    "per_page", {"type": "integer", "minimum": 1, "maximum": 100}, "items per page"
)


def op(
    summary: str,
    tag: str,
    *,
    params: Sequence[Schema] = (),
    body: Schema | None = None,
    body_type: str = "application/json",
    ok: Schema | None = None,
    status: int = 200,
    ok_type: str = "application/json",
    errors: Sequence[int] = ERROR_CODES,
    secured: bool = True,
) -> Schema:
    """One operation with its success and error responses."""
    responses: dict[str, Schema] = {
        str(status): {
            "description": REASONS.get(status, "OK"),
            "content": {ok_type: {"schema": ok if ok is not None else ref("Msg")}},
        }
    }
    for code in errors if secured else [c for c in errors if c != 401]:
        responses[str(code)] = {
            "description": REASONS[code],
            "content": {"application/json": {"schema": ref("Error")}},
        }
    operation: Schema = {"summary": summary, "tags": [tag], "responses": responses}
    if params:
        operation["parameters"] = list(params)
    if body is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {body_type: {"schema": body}},
        }
    if not secured:
        operation["security"] = []
    return operation


def components() -> Schema:
    """Schemas and security schemes shared by every API."""
    from workhorse.api.openapi_mq import mq_schemas
    from workhorse.api.openapi_native import native_schemas
    from workhorse.api.openapi_worker import worker_schemas

    return {
        "securitySchemes": {
            "OAuthHeader": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`OAuth <token>` (Bearer is accepted too)",
            },
            "OAuthQuery": {"type": "apiKey", "in": "query", "name": "oauth"},
        },
        "schemas": {
            "Error": obj({"msg": {"type": "string"}}, ["msg"]),
            "Msg": obj({"msg": {"type": "string"}}, ["msg"]),
            **worker_schemas(),
            **mq_schemas(),
            **native_schemas(),
        },
    }


def document() -> Schema:
    """The whole document."""
    from workhorse.api.openapi_mq import mq_paths
    from workhorse.api.openapi_native import native_paths
    from workhorse.api.openapi_worker import worker_paths

    paths: dict[str, Schema] = {
        "/v1/health": {
            "get": op(
                "Liveness",
                "native",
                ok=obj({"status": {"type": "string"}}, ["status"]),
                errors=(),
                secured=False,
            )
        },
        **worker_paths(),
        **mq_paths(),
        **native_paths(),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Workhorse API",
            "version": "0.1.0",
            "description": (
                "IronWorker v2 (/2), IronMQ v3 (/3) and the native API (/v1). "
                "Authenticate with `Authorization: OAuth <token>` or `?oauth=<token>`. "
                'Errors are `{"msg": ...}`.'
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"OAuthHeader": []}, {"OAuthQuery": []}],
        "paths": paths,
        "components": components(),
    }
