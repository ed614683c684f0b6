"""Limits and code options: sizes, defaults, ranges, the stored form."""

from __future__ import annotations

import pytest

from workhorse.domain.limits import (
    GIB,
    MIB,
    CodeOptions,
    Limits,
    code_options,
    decode_code_options,
    format_size,
    limits_from,
    parse_size,
)
from workhorse.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512M", 512 * MIB),
        ("64MiB", 64 * MIB),
        ("1g", GIB),
        ("1.5G", GIB + 512 * MIB),
        ("2048", 2048),
        (" 10 kb ", 10 * 1024),
        (4096, 4096),
    ],
)
def test_parse_size_accepts_binary_units(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "12Q", "-1M", "M", "1.2.3G"])
def test_parse_size_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(InvalidInput, match="not a size"):
        parse_size(text)


def test_format_size_uses_exact_units() -> None:
    assert format_size(512 * MIB) == "512 MiB"
    assert format_size(GIB) == "1 GiB"
    assert format_size(1000) == "1000 B"


def test_limits_default_to_the_documented_values() -> None:
    assert limits_from(None) == Limits(
        memory=512 * MIB, cpu=3600, processes=256, open_files=1024, disk=GIB
    )


def test_explicit_limits_override_only_themselves() -> None:
    limits = limits_from({"memory": "64M", "processes": 64})
    assert (limits.memory, limits.processes) == (64 * MIB, 64)
    assert limits.cpu == Limits().cpu


@pytest.mark.parametrize(
    ("explicit", "message"),
    [
        ({"memory": "1M"}, "memory must be between"),
        ({"processes": 2}, "processes must be between"),
        ({"cpu": 0}, "cpu must be between"),
        ({"open_files": True}, "open_files must be between"),
        ({"swap": 1}, "unknown limit 'swap'"),
    ],
)
def test_limits_out_of_range_are_refused(
    explicit: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        limits_from(explicit)


def test_code_options_round_trip_through_json() -> None:
    options = code_options(
        env={"A": "1"},
        config="{}",
        limits={"memory": "64M", "cpu": None},
        network=True,
        image="alpine:3.20",
    )
    assert options.limits == {"memory": 64 * MIB}
    assert decode_code_options(options.to_json()) == options


def test_options_stored_before_limits_existed_decode_with_defaults() -> None:
    options = decode_code_options('{"env": {"K": "v"}, "config": null}')
    assert options == CodeOptions(env={"K": "v"})
    assert options.effective_limits == Limits()
    assert options.network is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"env": {"1BAD": "x"}}, "env var name"),
        ({"env": {"OK": "a\0b"}}, "without NUL"),
        ({"config": "x" * (64 * 1024 + 1)}, "config is over"),
        ({"image": "bad image"}, "not a valid Docker image"),
    ],
)
def test_bad_code_options_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        code_options(**kwargs)  # type: ignore[arg-type]
