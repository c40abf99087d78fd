"""Test app whose import starts a child process (as an app's helper server or worker pool would) and records
its pid in ``DEVHOST_TEST_CHILD_PID``: stopping the devhost must stop that child too."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

_child = subprocess.Popen(["sleep", "600"])
Path(os.environ["DEVHOST_TEST_CHILD_PID"]).write_text(str(_child.pid))


@app.route(route="ping")
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")
