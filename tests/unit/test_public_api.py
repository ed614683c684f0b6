"""The public API: sorted __all__, every name documented."""

from __future__ import annotations

import inspect

import workhorse


def test_all_is_sorted_and_complete() -> None:
    assert workhorse.__all__ == sorted(workhorse.__all__)
    for name in workhorse.__all__:
        assert hasattr(workhorse, name)


def test_every_public_name_has_a_docstring() -> None:
    for name in workhorse.__all__:
        obj = getattr(workhorse, name)
        assert inspect.getdoc(obj), f"{name} has no docstring"
