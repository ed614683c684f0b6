"""Package archives: what upload refuses, how directories are zipped and unpacked."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from workhorse.client import (
    CodePackage,
    unpack_revision,
    validate_package,
    zip_directory,
)
from workhorse.errors import InvalidInput, NotFound
from workhorse.storage.blobs import BlobStore

PKG = CodePackage(name="pkg", command="sh run.sh")


def make_zip(
    entries: dict[str, bytes], *, modes: dict[str, int] | None = None
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (modes or {}).get(name, stat.S_IFREG | 0o644) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def test_a_plain_package_is_accepted() -> None:
    validate_package(PKG, make_zip({"run.sh": b"echo hi\n", "lib/a.txt": b"a"}))


@pytest.mark.parametrize(
    "name",
    ["../evil.sh", "a/../../evil.sh", "/etc/cron.d/evil", "..\\evil.bat", "C:/evil"],
)
def test_entries_pointing_outside_the_package_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="points outside the package"):
        validate_package(PKG, make_zip({name: b"x"}))


def test_symlink_entries_are_refused() -> None:
    archive = make_zip({"link": b"/etc/passwd"}, modes={"link": stat.S_IFLNK | 0o777})
    with pytest.raises(InvalidInput, match="symlink"):
        validate_package(PKG, archive)


def test_device_entries_are_refused() -> None:
    archive = make_zip({"dev": b""}, modes={"dev": stat.S_IFCHR | 0o666})
    with pytest.raises(InvalidInput, match="not a regular file"):
        validate_package(PKG, archive)


def test_oversized_packages_are_refused() -> None:
    archive = make_zip({"big.bin": os.urandom(4096)})
    with pytest.raises(InvalidInput, match="the limit is 1000 bytes"):
        validate_package(PKG, archive, max_bytes=1000)


def test_archives_that_unpack_far_beyond_the_limit_are_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros", b"\0" * (2 * 1024 * 1024))
    with pytest.raises(InvalidInput, match="unpacks to more than"):
        validate_package(PKG, buf.getvalue(), max_bytes=100_000)


def test_what_is_not_a_zip_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not a valid zip"):
        validate_package(PKG, b"PK but not really")


@pytest.mark.parametrize(
    ("package", "message"),
    [
        (CodePackage(name="x", command="  "), "needs a command"),
        (
            CodePackage(name="x", command="run", runtime="cobol"),
            "unknown runtime 'cobol'",
        ),
        (CodePackage(name="..", command="run"), "code name"),
        (CodePackage(name="x", command="run", memory="1K"), "memory must be between"),
        (CodePackage(name="x", command="run", image="no spaces"), "Docker image"),
    ],
)
def test_bad_settings_are_refused(package: CodePackage, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate_package(package, make_zip({"run": b""}))


def test_zip_directory_copies_internal_symlinks_and_refuses_escaping_ones(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "run.sh").write_text("echo hi\n")
    (src / "bin" / "run").symlink_to("../run.sh")
    zipped = zipfile.ZipFile(io.BytesIO(zip_directory(src)))
    assert zipped.read("bin/run") == b"echo hi\n"
    (src / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(InvalidInput, match="symlink out of the package"):
        zip_directory(src)


def test_zip_directory_is_deterministic(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "a.txt").write_text("a")
    assert zip_directory(tmp_path) == zip_directory(tmp_path)


def test_unpack_makes_files_readable_and_keeps_execute_bits(tmp_path: Path) -> None:
    archive = make_zip(
        {"run.sh": b"echo", "secret.txt": b"s"},
        modes={"run.sh": stat.S_IFREG | 0o700, "secret.txt": stat.S_IFREG | 0o600},
    )
    target = tmp_path / "code"
    unpack_revision(archive, target)
    assert stat.S_IMODE((target / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((target / "secret.txt").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["code"]


def test_unpack_refuses_traversal_even_from_a_stored_row(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="points outside"):
        unpack_revision(make_zip({"../escape": b"x"}), tmp_path / "code")
    assert not (tmp_path / "escape").exists()
    assert list(tmp_path.iterdir()) == []


def test_unpack_into_an_existing_target_is_harmless(tmp_path: Path) -> None:
    archive = make_zip({"run.sh": b"echo"})
    unpack_revision(archive, tmp_path / "code")
    unpack_revision(archive, tmp_path / "code")
    assert [p.name for p in tmp_path.iterdir()] == ["code"]


def test_blob_store_checks_names_and_checksums(tmp_path: Path) -> None:
    import hashlib

    store = BlobStore(tmp_path)
    data = b"zip bytes"
    checksum = hashlib.sha256(data).hexdigest()
    name = store.put(checksum, data)
    assert store.get(name, checksum) == data
    with pytest.raises(InvalidInput, match="does not match"):
        store.get(name, "0" * 64)
    with pytest.raises(InvalidInput, match="not a blob name"):
        store.get("../../etc/passwd", checksum)
    store.delete(name)
    with pytest.raises(NotFound, match="missing"):
        store.get(name, checksum)
