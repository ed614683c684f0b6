"""A forgiving multipart/form-data reader for code uploads.

Two quirks of the official Python client (iron-worker 1.3.8 on Python 3) rule out
a strict parser: its boundary `----------ThIs_Is_tHe_bouNdaRY_$` contains `$`, and
its file part carries the Python repr of the zip bytes (`b'PK\\x03\\x04...'`) rather
than the bytes. `decode_file` undoes the latter exactly.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from workhorse.api.errors import ApiError

_PARAM = re.compile(r';\s*([a-zA-Z0-9_*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


@dataclass(frozen=True, slots=True)
class Part:
    """One form field."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def header_params(value: str) -> dict[str, str]:
    """`form-data; name="x"; filename="y"` -> {"name": "x", "filename": "y"}."""
    params: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1].replace('\\"', '"')
        params[key.lower()] = raw
    return params


def boundary_of(content_type: str) -> bytes:
    """The boundary of a multipart Content-Type (any characters accepted)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "multipart/form-data":
        raise ApiError(406, "Content-Type must be multipart/form-data for code uploads")
    boundary = header_params(content_type).get("boundary", "")
    if not boundary:
        raise ApiError(400, "multipart/form-data needs a boundary")
    return boundary.encode("latin-1")


def _part(chunk: bytes) -> Part | None:
    if chunk.startswith(b"\r\n"):
        chunk = chunk[2:]
    elif chunk.startswith(b"\n"):
        chunk = chunk[1:]
    head, sep, data = chunk.partition(b"\r\n\r\n")
    if not sep:
        head, sep, data = chunk.partition(b"\n\n")
    if not sep:
        return None
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").splitlines():
        key, colon, value = line.partition(":")
        if colon:
            headers[key.strip().lower()] = value.strip()
    disposition = header_params(headers.get("content-disposition", ""))
    name = disposition.get("name")
    if not name:
        return None
    return Part(name, disposition.get("filename"), headers.get("content-type"), data)


def parse(body: bytes, boundary: bytes) -> dict[str, Part]:
    """Form fields by name (the first of each name wins)."""
    delimiter = b"--" + boundary
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        raise ApiError(400, "Malformed multipart body: boundary not found")
    parts: dict[str, Part] = {}
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        part = _part(chunk)
        if part is not None and part.name not in parts:
            parts[part.name] = part
    return parts


def decode_file(data: bytes) -> bytes:
    """A file part's bytes, undoing the Python 3 client's `b'...'` repr encoding.

    The repr's escapes (`\\xNN`, `\\n`, `\\'`...) are undone by the codec Python
    itself uses for bytes literals: linear time and memory, and no evaluation.
    """
    stripped = data.strip()
    if (
        len(stripped) >= 3
        and stripped[:2] in (b"b'", b'b"')
        and stripped[-1:] == stripped[1:2]
    ):
        try:
            value, _ = codecs.escape_decode(stripped[2:-1])
        except ValueError:
            return data
        return value
    return data
