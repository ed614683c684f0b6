"""`workhorse project|token|server` and the first-start token of `workhorse up`."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.acceptance.conftest import free_port
from workhorse.cli.main import cli
from workhorse.cli.projects import bootstrap
from workhorse.storage import Storage


def run(database_url: str, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--database-url", database_url, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_project_and_token_lifecycle(database_url: str, storage: Storage) -> None:
    out = run(database_url, "project", "create", "shop")
    project_id = re.search(r"project_id:\s*(\S+)", out).group(1)  # type: ignore[union-attr]
    first = re.search(r"token:\s*(\S+)", out).group(1)  # type: ignore[union-attr]
    assert storage.run(lambda tx: tx.projects.project_of(first)) == project_id
    projects = json.loads(run(database_url, "project", "list", "--json"))
    assert {"id": project_id, "name": "shop"}.items() <= projects[0].items()

    out = run(database_url, "--project", project_id, "token", "create", "--name", "ci")
    token_id = re.search(r"token_id:\s*(\S+)", out).group(1)  # type: ignore[union-attr]
    second = re.search(r"token:\s*(\S+)", out).group(1)  # type: ignore[union-attr]
    listed = json.loads(
        run(database_url, "--project", project_id, "token", "list", "--json")
    )
    assert token_id in {t["id"] for t in listed}
    assert second not in json.dumps(listed)

    run(database_url, "token", "revoke", token_id)
    assert storage.run(lambda tx: tx.projects.project_of(second)) is None
    again = CliRunner().invoke(
        cli, ["--database-url", database_url, "token", "revoke", token_id]
    )
    assert again.exit_code == 2


def test_token_create_json_is_an_iron_json(database_url: str) -> None:
    out = run(database_url, "token", "create", "--json")
    assert '"project_id": "default"' in out
    assert '"protocol": "http"' in out
    assert '"scheme": "http"' in out
    assert '"port": 8080' in out


def test_first_start_mints_one_token_only_once(storage: Storage) -> None:
    minted = bootstrap(storage)
    assert minted is not None
    project_id, token = minted
    assert project_id == "default"
    assert storage.run(lambda tx: tx.projects.project_of(token)) == "default"
    assert bootstrap(storage) is None


@pytest.mark.slow
def test_server_command_serves_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    url = f"sqlite:///{tmp_path / 'w.db'}"
    exe = str(Path(sys.executable).parent / "workhorse")
    proc = subprocess.Popen(
        [exe, "--database-url", url, "server", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # the banner ends with the first token
            lines.append(line)
            if re.fullmatch(r"\s*[A-Za-z0-9_-]{43}\s*", line):
                break
        token = lines[-1].strip()
        resp = httpx.get(
            f"http://127.0.0.1:{port}/2/projects/default", params={"oauth": token}
        )
        assert resp.json()["id"] == "default"
        with httpx.Client() as http:
            http.get(f"http://127.0.0.1:{port}/2/projects/default?oauth={token}")
        proc.send_signal(signal.SIGTERM)
        log_text, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0
        access = [line for line in log_text.splitlines() if '"GET /2/projects' in line]
        assert access
        assert all("oauth=***" in line and token not in line for line in access)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
