"""The examples in examples/ run end to end, as a reader would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        (
            "examples/master_slave/run.py",
            ["--items", "250"],
            "children: {'complete': 3}",
        ),
        ("examples/army_of_workers/run.py", ["--tasks", "12"], "{'complete': 12}"),
        # A burst of requests for three pages: one render each.
        (
            "examples/web_worker/run.py",
            ["--requests", "24"],
            "24 requests, 3 renders, 21 found",
        ),
    ],
)
def test_example_runs(
    script: str, args: list[str], expected: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "TMPDIR": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert expected in result.stdout
