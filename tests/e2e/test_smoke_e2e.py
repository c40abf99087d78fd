"""``imagepipe smoke`` against the local stack with keys enforced, as against a deployed app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imagepipe import cli
from tests.support.devhost import Devhost
from tests.support.stack import start_keyed_host

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devhost]:
    """The app on a devhost that checks function and admin keys, with its own Azurite and the local analyzer."""
    running = start_keyed_host(tmp_path_factory.mktemp("smoke"))
    try:
        yield running
    finally:
        running.stop()


def smoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(["smoke", *args])
    return code, capsys.readouterr().out


def test_smoke_passes_on_a_working_stack_and_never_prints_a_key(
    host: Devhost, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    keys = host.keys()
    function_key, master = keys["functionKeys"]["default"], keys["masterKey"]
    first, out = smoke(capsys, "--url", host.base, f"--key={function_key}", f"--admin-key={master}", "--timeout", "240")
    assert first == 0, out
    for name in ("upload", "completes", "record", "run listed", "run detail", "runs paging", "stats"):
        assert f"PASS  {name}" in out, out
    assert "smoke PASSED" in out
    # a second run makes two runs: the paging check follows a continuation token to the next page
    second, out = smoke(
        capsys, "--url", host.base, f"--key={function_key}", f"--admin-key={master}", "--timeout", "240"
    )
    assert second == 0, out
    assert "2 page(s) of one run each via continuation tokens; 2 runs in total" in out
    assert function_key not in out and master not in out


def test_smoke_fails_clearly_with_a_wrong_admin_key(host: Devhost, capsys: pytest.CaptureFixture[str]) -> None:
    function_key = host.keys()["functionKeys"]["default"]
    code, out = smoke(capsys, "--url", host.base, f"--key={function_key}", f"--admin-key={function_key}")
    assert code == 1
    assert "PASS  record" in out and "FAIL  run listed" in out
    assert "HTTP 401: the key was refused; check --admin-key" in out
    assert "smoke FAILED (run listed, run detail" not in out  # run detail is skipped, not failed
    assert "SKIP  run detail" in out and "FAIL  runs paging" in out
    assert function_key not in out


def test_smoke_without_an_admin_key_checks_the_client_side_only(
    host: Devhost, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMAGEPIPE_ADMIN_KEY", raising=False)
    function_key = host.keys()["functionKeys"]["default"]
    code, out = smoke(capsys, "--url", host.base, f"--key={function_key}")
    assert code == 0 and "SKIP  run listed" in out and "no --admin-key" in out


def test_smoke_fails_on_a_wrong_function_key(host: Devhost, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = smoke(capsys, "--url", host.base, "--key=not-a-key", "--admin-key=not-a-key-either")
    assert code == 1 and "FAIL  upload" in out and "SKIP  completes" in out
    assert "HTTP 401: the key was refused; check --key" in out
    assert "not-a-key" not in out
