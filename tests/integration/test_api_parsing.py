"""Small parts: multipart quirks, lenient values, rate limits, breaker, waiter."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile

import httpx
import pytest
from iron_worker import IronWorker

from workhorse.api import iron_mq_v3, iron_worker_v2, native_v1
from workhorse.api.errors import ApiError
from workhorse.api.executor import Breaker
from workhorse.api.limits import RateLimiter
from workhorse.api.multipart import boundary_of, decode_file, parse
from workhorse.api.openapi import document
from workhorse.api.waiter import Notifier
from workhorse.api.wire import as_int, parse_time, rfc3339
from workhorse.errors import StorageUnavailable
from workhorse.storage import Storage


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hello.py", "print('hi')\n" + "\x00\xff" * 10)
    return buf.getvalue()


def test_python3_client_upload_is_decoded_exactly() -> None:
    archive = _zip()
    ctype, body = IronWorker.encode_multipart_formdata(
        [("data", json.dumps({"name": "hello"}))], [("file", "hello.zip", archive)]
    )
    assert "$" in ctype  # the client's illegal boundary character
    parts = parse(body.encode("latin-1"), boundary_of(ctype))
    assert json.loads(parts["data"].data) == {"name": "hello"}
    assert parts["file"].filename == "hello.zip"
    assert decode_file(parts["file"].data) == archive


def test_standard_multipart_is_read_unchanged() -> None:
    archive = _zip()
    request = httpx.Request(
        "POST",
        "http://x/",
        data={"data": '{"name": "n"}'},
        files={"file": ("w.zip", archive)},
    )
    body = request.read()
    parts = parse(body, boundary_of(request.headers["content-type"]))
    assert decode_file(parts["file"].data) == archive
    assert parts["data"].data == b'{"name": "n"}'


def test_multipart_errors() -> None:
    with pytest.raises(ApiError) as err:
        boundary_of("application/zip")
    assert err.value.status == 406
    with pytest.raises(ApiError):
        boundary_of("multipart/form-data")
    assert boundary_of('multipart/form-data; boundary="a b"') == b"a b"
    with pytest.raises(ApiError):
        parse(b"no boundary here", b"xyz")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3600, 3600), (3600.0, 3600), ("12", 12), (None, None), (-3, -3)],
)
def test_whole_numbers_are_read_leniently(value: object, expected: int | None) -> None:
    assert as_int(value, "x") == expected


@pytest.mark.parametrize("value", [1.5, True, "x", [1], float("inf")])
def test_non_whole_numbers_are_refused(value: object) -> None:
    with pytest.raises(ApiError):
        as_int(value, "x")


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2030-01-01T00:00:00Z", 1893456000.0),
        ("2030-01-01T01:00:00+01:00", 1893456000.0),
        ("2030-01-01T00:00:00.123456789Z", 1893456000.123456),
        ("2030-01-01T00:00:00", 1893456000.0),
        ("0001-01-01T00:00:00Z", None),
        (None, None),
    ],
)
def test_times_in_every_client_shape(text: str | None, epoch: float | None) -> None:
    parsed = parse_time(text, "t")
    assert parsed == pytest.approx(epoch) if epoch is not None else parsed is None


def test_times_are_written_in_utc_with_z() -> None:
    assert rfc3339(1893456000.5) == "2030-01-01T00:00:00.500Z"
    assert rfc3339(None) is None


def test_rate_limiter_refills_over_time() -> None:
    limiter = RateLimiter(rate=2.0, burst=2.0)
    assert limiter.take("k", now=0.0) == 0
    assert limiter.take("k", now=0.0) == 0
    assert limiter.take("k", now=0.0) == pytest.approx(0.5)
    assert limiter.take("k", now=0.6) == 0
    assert limiter.take("other", now=0.6) == 0
    assert not RateLimiter(rate=0).enabled


def test_breaker_probes_once_after_the_pause() -> None:
    breaker = Breaker(pause=0.0)
    assert breaker.before() is False
    breaker.failed()
    assert breaker.before() is True  # pause over: this call probes
    with pytest.raises(StorageUnavailable):
        breaker.before()  # only one probe at a time
    breaker.succeeded()
    assert breaker.before() is False
    slow = Breaker(pause=60.0)
    slow.failed()
    with pytest.raises(StorageUnavailable):
        slow.before()


def test_waiter_wakes_a_subscriber_when_its_key_is_announced(storage: Storage) -> None:
    async def scenario() -> tuple[bool, int]:
        notifier = Notifier(storage, poll_seconds=5.0)
        try:
            with (
                notifier.subscribe("queue:p:a") as mine,
                notifier.subscribe("queue:p:a"),
            ):
                watching = notifier.watching  # one watch thread per key, shared
                await asyncio.to_thread(
                    storage.run, lambda tx: tx.conn.notify("queue:p:a")
                )
                return await mine.wait(5.0), watching
        finally:
            notifier.close()

    assert asyncio.run(scenario()) == (True, 1)


def test_the_document_lists_exactly_the_routes_served() -> None:
    served = {
        (path, method.lower())
        for table in (iron_worker_v2.routes(), iron_mq_v3.routes(), native_v1.routes())
        for path, methods, _, _ in table
        for method in methods
    }
    documented = {
        (path, method)
        for path, item in document()["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert documented - {("/v1/health", "get")} == served
