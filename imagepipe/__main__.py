"""``python -m imagepipe <command>``: ``analyze`` runs the local analyzer on files (imagepipe.analyze_cli);
any other command goes to ``imagepipe.cli`` when that module exists."""

from __future__ import annotations

import importlib
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "analyze":
        from imagepipe.analyze_cli import main as analyze_main

        return analyze_main(args[1:])
    try:
        cli = importlib.import_module("imagepipe.cli")
    except ImportError:
        print("usage: python -m imagepipe analyze FILE... [--profile P]", file=sys.stderr)
        return 2
    result = cli.main(args)
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
