"""``python -m imagepipe <command>``: ``analyze`` runs the local analyzer on files (imagepipe.analyze_cli);
any other command goes to the operator CLI (``imagepipe.cli``)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "analyze":
        from imagepipe.analyze_cli import main as analyze_main

        return analyze_main(args[1:])
    from imagepipe.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
