"""Which language runtimes this runner can offer code packages (`workhorse stacks`).

Tasks see the host's system directories (read-only in the sandbox) with a fixed
PATH, so a runtime is available when its interpreter is on that PATH.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass

from workhorse.errors import WorkhorseError

SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
VERSION_TIMEOUT = 5.0

# stack name -> (executable, version command arguments)
KNOWN: dict[str, tuple[str, tuple[str, ...]]] = {
    "python": ("python3", ("--version",)),
    "node": ("node", ("--version",)),
    "ruby": ("ruby", ("--version",)),
    "sh": ("sh", ()),
    "bash": ("bash", ("--version",)),
    "perl": ("perl", ("-e", "print $^V")),
    "php": ("php", ("--version",)),
    "java": ("java", ("-version",)),
    "go": ("go", ("version",)),
}
# code package runtime -> the stack it needs (binary: none; the command is the program)
RUNTIME_STACKS = {"python": "python", "node": "node", "ruby": "ruby", "sh": "sh"}


@dataclass(frozen=True)
class Stack:
    """One runtime found on this runner."""

    name: str
    path: str
    version: str


@functools.cache
def _which(executable: str) -> str | None:
    return shutil.which(executable, path=SEARCH_PATH)


def _version(path: str, args: tuple[str, ...]) -> str:
    if not args:
        return "-"
    try:
        out = subprocess.run(
            [path, *args],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def detect_stacks() -> list[Stack]:
    """Every known runtime present here, with its version line."""
    found = []
    for name, (executable, args) in KNOWN.items():
        path = _which(executable)
        if path is not None:
            found.append(Stack(name, path, _version(path, args)))
    return found


def require_runtime(runtime: str) -> None:
    """Refuse to start a task whose runtime is not installed on this runner.

    Raises:
        WorkhorseError: naming the missing interpreter.
    """
    stack = RUNTIME_STACKS.get(runtime)
    if stack is None:
        return
    executable = KNOWN[stack][0]
    if _which(executable) is None:
        raise WorkhorseError(
            f"runtime {runtime!r} is not available on this runner ({executable} not "
            "found on PATH; `workhorse stacks` lists what is)"
        )
