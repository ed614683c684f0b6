"""Rate specs and the token bucket's arithmetic."""

from __future__ import annotations

import pytest

from workhorse.domain.rate import (
    available,
    burst,
    describe_rate,
    parse_rate,
    wait_for_token,
    whole_tokens,
)
from workhorse.errors import InvalidInput


@pytest.mark.parametrize(
    ("spec", "per_second"),
    [("10/s", 10.0), ("90/m", 1.5), ("5/2h", 5 / 7200), ("1/d", 1 / 86400), (3, 3.0),
     (0.5, 0.5), (" 7 / s ", 7.0), (None, None)],
)  # fmt: skip
def test_rates_parse(spec: object, per_second: float | None) -> None:
    assert parse_rate(spec) == pytest.approx(per_second)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "spec",
    ["0/s", "-1/s", 0, -2, "ten/s", "10/x", "10", "", True, float("inf"), "2e6/s"],
)
def test_bad_rates_are_refused(spec: object) -> None:
    with pytest.raises(InvalidInput, match="rate_limit must be"):
        parse_rate(spec)  # type: ignore[arg-type]


def test_rates_read_back_as_written() -> None:
    assert [describe_rate(parse_rate(s)) for s in ("10/s", "90/m", "2/h", "1/d")] == [
        "10/s",
        "90/m",
        "2/h",
        "1/d",
    ]
    assert describe_rate(None) is None


def test_the_bucket_refills_to_one_seconds_worth() -> None:
    assert burst(0.1) == 1.0
    assert burst(50.0) == 50.0
    assert available(2.0, None, None, 100.0) == 2.0  # never used: full
    assert available(2.0, 0.0, 100.0, 100.25) == 0.5
    assert available(2.0, 0.0, 100.0, 200.0) == 2.0
    assert available(2.0, 1.0, 100.0, 99.0) == 1.0  # an older clock adds nothing
    assert wait_for_token(2.0, 0.5) == 0.25
    assert wait_for_token(2.0, 1.5) == 0.0
    assert whole_tokens(0.9999999) == 1
    assert whole_tokens(1.9) == 1
