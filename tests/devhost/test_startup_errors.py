"""A devhost that cannot start says why in one line (the file and the problem, no traceback) and exits non-zero:
a host.json or local.settings.json that is not valid JSON or has a setting of the wrong type, a missing
function_app.py, an app that fails to import (the exception and the app's own file:line) or defines no app."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devhost.process import REPO_ROOT, free_port

pytestmark = [pytest.mark.devhost]

APP = """import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="ping")
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")
"""


def start(app: Path) -> tuple[int, list[str]]:
    """Run ``python -m devhost start`` on ``app``; its exit status and its non-empty output lines."""
    done = subprocess.run(
        [sys.executable, "-m", "devhost", "start", "--app", str(app), "--port", str(free_port())]
        + ["--state", str(app.parent / "state"), "--storage", "none", "--no-auth"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]


def app_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    for name, text in files.items():
        (app / name).write_text(text)
    return app


def the_line(app: Path) -> str:
    code, lines = start(app)
    assert code != 0, lines
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    return lines[0]


def test_host_json_that_is_not_json(tmp_path: Path) -> None:
    app = app_dir(tmp_path, {"function_app.py": APP, "host.json": '{"version": "2.0",\n  "extensions": }'})
    line = the_line(app)
    assert str(app / "host.json") in line and "not valid JSON" in line and "line 2" in line, line


@pytest.mark.parametrize(
    ("host_json", "names"),
    [
        ({"extensions": {"durableTask": {"maxConcurrentActivityFunctions": "ten"}}}, "maxConcurrentActivityFunctions"),
        ({"extensions": {"durableTask": {"maxConcurrentOrchestratorFunctions": 0}}}, "maxConcurrentOrchestrator"),
        ({"extensions": {"durableTask": {"hubName": 7}}}, "hubName"),
        ({"extensions": {"durableTask": []}}, "extensions.durableTask must be an object"),
        ({"extensions": {"http": {"routePrefix": False}}}, "routePrefix"),
        ({"functionTimeout": 300}, "functionTimeout"),
        ({"functionTimeout": "ten minutes"}, "functionTimeout"),
        (["version", "2.0"], "must hold a JSON object"),
    ],
)
def test_host_json_with_a_setting_of_the_wrong_type(tmp_path: Path, host_json: object, names: str) -> None:
    app = app_dir(tmp_path, {"function_app.py": APP, "host.json": json.dumps(host_json)})
    line = the_line(app)
    assert str(app / "host.json") in line and names in line, line


def test_local_settings_that_is_not_json(tmp_path: Path) -> None:
    app = app_dir(tmp_path, {"function_app.py": APP, "local.settings.json": "{'Values': {}}"})
    line = the_line(app)
    assert str(app / "local.settings.json") in line and "not valid JSON" in line, line


def test_missing_function_app(tmp_path: Path) -> None:
    app = app_dir(tmp_path, {"host.json": "{}"})
    line = the_line(app)
    assert str(app / "function_app.py") in line and "not found" in line, line


def test_app_that_fails_to_import_names_the_exception_and_its_own_line(tmp_path: Path) -> None:
    helper = "import os\n\nLIMIT = int(os.environ.get('NO_SUCH_SETTING_FOR_TEST', 'many'))\n"
    app = app_dir(tmp_path, {"function_app.py": "import helpers\n\n" + APP, "helpers.py": helper})
    line = the_line(app)
    assert str(app / "function_app.py") in line and "failed to import" in line, line
    assert "ValueError: invalid literal for int() with base 10: 'many'" in line, line
    assert f"(at {app / 'helpers.py'}:3)" in line, line  # the app's own frame, not the stdlib's


def test_app_with_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    app = app_dir(tmp_path, {"function_app.py": APP + "\ndef broken(:\n    pass\n"})
    line = the_line(app)
    assert "SyntaxError" in line and f"{app / 'function_app.py'}:" in line, line


def test_app_without_a_function_app_instance(tmp_path: Path) -> None:
    app = app_dir(tmp_path, {"function_app.py": "VALUE = 1\n"})
    line = the_line(app)
    assert str(app / "function_app.py") in line and "no FunctionApp" in line, line
