"""Command line: ``python -m devhost start --app DIR --port PORT --state DIR [--storage azurite|none] [--no-auth]``.

A start-up problem of the app (host.json, local.settings.json, function_app.py) or of the state folder (a task
hub of another devhost version) is one line on stderr naming the file and the problem, and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the host in the foreground."""
    parser = argparse.ArgumentParser(prog="devhost", description="Local Azure Functions + Durable host")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="run a function app in the foreground")
    start.add_argument("--app", required=True, type=Path, help="directory holding function_app.py")
    start.add_argument("--port", type=int, default=7071)
    start.add_argument("--state", required=True, type=Path, help="directory for all durable state")
    start.add_argument("--storage", choices=["azurite", "none"], default="azurite")
    start.add_argument("--no-auth", action="store_true", help="do not enforce function/admin keys")
    start.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    args = parser.parse_args(argv)
    from devhost.app_loader import AppStartupError
    from devhost.host import Host
    from devhost.taskhub import HubFormatError

    try:
        host = Host(args.app, args.port, args.state, storage=args.storage, no_auth=args.no_auth, bind=args.host)
    except (AppStartupError, HubFormatError) as exc:
        sys.stderr.write(f"devhost: cannot start: {exc}\n")  # one line; the file and the problem, no traceback
        return 2
    host.run()
    # Activities still running in worker threads are abandoned (their work items stay in the task hub
    # and run again on the next start); do not wait for them at interpreter exit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
