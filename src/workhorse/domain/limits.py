"""Resource limits of a code package's tasks, and the options a revision carries.

Pure values and validation only; the runner's containment turns them into
cgroup settings, rlimits, tmpfs sizes or Docker flags.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from workhorse.errors import InvalidInput

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": KIB, "m": MIB, "g": GIB, "t": 1024 * GIB}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}$")
MAX_CONFIG_BYTES = 64 * KIB
MAX_ENV_VARS = 200


@dataclass(frozen=True, slots=True)
class Limits:
    """What one task of a code may use. Every field has a documented default.

    Attributes:
        memory: bytes of memory (cgroup memory limit; RLIMIT_AS without cgroups).
        cpu: seconds of CPU time (RLIMIT_CPU per process, the cgroup total when known).
        processes: processes and threads at once (cgroup pids limit; RLIMIT_NPROC).
        open_files: open file descriptors per process (RLIMIT_NOFILE).
        disk: bytes in TASK_DIR (a tmpfs of this size in the sandbox; it is also
            the largest single file, RLIMIT_FSIZE, everywhere).
    """

    memory: int = 512 * MIB
    cpu: int = 3600
    processes: int = 256
    open_files: int = 1024
    disk: int = 1 * GIB

    def describe(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"memory {format_size(self.memory)}, cpu {self.cpu} s, "
            f"processes {self.processes}, open files {self.open_files}, "
            f"disk {format_size(self.disk)}"
        )


# name -> (lowest, highest) accepted value
LIMIT_RANGES: dict[str, tuple[int, int]] = {
    "memory": (8 * MIB, 1024 * GIB),
    "cpu": (1, 7 * 24 * 3600),
    "processes": (8, 1_000_000),
    "open_files": (16, 1_048_576),
    "disk": (1 * MIB, 1024 * GIB),
}
LIMIT_NAMES = tuple(f.name for f in fields(Limits))


def parse_size(text: str | int) -> int:
    """Bytes from `512M`, `1G`, `64MiB`, `1.5g` or a number of bytes (binary units)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    match = _SIZE.match(str(text))
    if match is None:
        raise InvalidInput(
            f"not a size: {text!r} (use e.g. 512M, 1G or a number of bytes)"
        )
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.lower()])


def format_size(size: int) -> str:
    """`536870912` -> `512 MiB` (exact units only, bytes otherwise)."""
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def limits_from(explicit: dict[str, Any] | None) -> Limits:
    """Limits from the explicitly set values (the rest take their defaults).

    Raises:
        InvalidInput: an unknown name, or a value out of its range.
    """
    explicit = explicit or {}
    unknown = set(explicit) - set(LIMIT_NAMES)
    if unknown:
        raise InvalidInput(
            f"unknown limit {sorted(unknown)[0]!r}; known: {', '.join(LIMIT_NAMES)}"
        )
    values: dict[str, int] = {}
    for name, raw in explicit.items():
        if raw is None:
            continue
        value = parse_size(raw) if name in ("memory", "disk") else raw
        low, high = LIMIT_RANGES[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not low <= value <= high
        ):
            raise InvalidInput(
                f"limit {name} must be between {low} and {high}, got {raw!r}"
            )
        values[name] = value
    return replace(Limits(), **values)


@dataclass(frozen=True)
class CodeOptions:
    """What a revision carries besides its archive and command (stored as JSON).

    Attributes:
        env: variables every task of the revision gets.
        config: text given to tasks as the CONFIG_FILE.
        limits: only the explicitly set limits (defaults apply to the rest when
            a task runs, so documented defaults stay the defaults).
        network: whether tasks may use the host's network (off: loopback only).
        image: a Docker image to run in, where a Docker engine is reachable.
    """

    env: dict[str, str] = field(default_factory=dict)
    config: str | None = None
    limits: dict[str, int] = field(default_factory=dict)
    network: bool = False
    image: str | None = None

    @property
    def effective_limits(self) -> Limits:
        """The limits a task runs with."""
        return limits_from(self.limits)

    def to_json(self) -> str:
        """The stored form."""
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)


def code_options(
    *,
    env: dict[str, str] | None = None,
    config: str | None = None,
    limits: dict[str, Any] | None = None,
    network: bool = False,
    image: str | None = None,
) -> CodeOptions:
    """Validated options for an upload.

    Raises:
        InvalidInput: naming the first bad field.
    """
    env = dict(env or {})
    if len(env) > MAX_ENV_VARS:
        raise InvalidInput(f"at most {MAX_ENV_VARS} env vars, got {len(env)}")
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise InvalidInput(
                f"env var name {key!r} must match [A-Za-z_][A-Za-z0-9_]*"
            )
        if not isinstance(value, str) or "\0" in value:
            raise InvalidInput(f"env var {key} must be a string without NUL bytes")
    if config is not None and len(config.encode()) > MAX_CONFIG_BYTES:
        raise InvalidInput(f"config is over {MAX_CONFIG_BYTES} bytes")
    resolved = limits_from(limits)
    explicit = {
        name: getattr(resolved, name)
        for name, raw in (limits or {}).items()
        if raw is not None
    }
    if image is not None and (image == "" or not _IMAGE.match(image)):
        raise InvalidInput(f"image {image!r} is not a valid Docker image reference")
    return CodeOptions(
        env=env,
        config=config,
        limits=explicit,
        network=bool(network),
        image=image or None,
    )


def decode_code_options(raw: str | dict[str, Any] | None) -> CodeOptions:
    """Stored JSON (or an already decoded dict) to options; unknown keys are ignored.

    Revisions stored before limits existed decode with defaults.
    """
    data: Any = json.loads(raw) if isinstance(raw, str) else (raw or {})
    if not isinstance(data, dict):
        raise InvalidInput("stored code options are not a JSON object")
    limits = data.get("limits") or {}
    limits_from(limits)  # refuse a corrupt row early
    return CodeOptions(
        env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
        config=data.get("config"),
        limits={str(k): int(v) for k, v in limits.items()},
        network=bool(data.get("network", False)),
        image=data.get("image") or None,
    )
