"""``imagepipe`` command line: upload and query images, and operate the pipeline (runs, dead-letters, stats).

Talks to the HTTP API only (``imagepipe.client``), so it works the same against Azure and the local
devhost. Base URL and key: ``--url``/``--key`` or ``IMAGEPIPE_URL``/``IMAGEPIPE_KEY`` (operator commands
need the admin/master key on Azure). ``--json`` prints the API's JSON instead of tables; exit status is 0 on
success, 1 when the API answered an error (or an awaited image failed), 2 on bad usage. ``smoke`` checks a
deployment end to end (``imagepipe.smoke``) and exits 1 when any check fails. ``labels`` manages custom label
sets (``imagepipe.labels_cli``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imagepipe import labels_cli
from imagepipe.client import ApiError, ImagepipeClient

# ---------------------------------------------------------------------------------------------------
# output helpers
# ---------------------------------------------------------------------------------------------------


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def table(rows: Sequence[Sequence[Any]], header: Sequence[str], max_width: int = 60) -> str:
    cells = [[("" if c is None else str(c)).replace("\n", " ") for c in row] for row in rows]
    widths = [len(h) for h in header]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = min(max_width, max(widths[i], len(cell)))
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(c[:w].ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def progress(done: int, total: int, label: str) -> None:
    """A one-line progress bar on stderr (redrawn in place on a terminal)."""
    width = 30
    filled = int(width * done / total) if total else width
    bar = "#" * filled + "." * (width - filled)
    end = "\n" if done >= total or not sys.stderr.isatty() else ""
    sys.stderr.write(f"\r[{bar}] {done}/{total} {label[:50]:<50}{end}")
    sys.stderr.flush()


def _error_text(error: Any) -> str:
    if not isinstance(error, dict):
        return ""
    return f"{error.get('step') or ''}: {error.get('code') or ''}: {error.get('message') or ''}".strip(": ")


# ---------------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------------


def cmd_upload(client: ImagepipeClient, args: argparse.Namespace) -> int:
    uploads: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    files = [Path(f) for f in args.files]
    for index, path in enumerate(files):
        progress(index, len(files), f"uploading {path.name}")
        try:
            body = client.upload(path, profile=args.profile)
        except (ApiError, OSError) as exc:
            results.append({"file": str(path), "error": str(exc)})
            continue
        uploads[body["id"]] = str(path)
        results.append({"file": str(path), **body})
    progress(len(files), len(files), "uploaded")
    failed = any("error" in r for r in results)
    if args.wait and uploads:
        finished: set[str] = set()

        def update(image_id: str, status: Any) -> None:
            if status.get("status") in ("completed", "failed"):
                finished.add(image_id)
            progress(len(finished), len(uploads), f"{Path(uploads[image_id]).name}: {status.get('stage')}")

        statuses = client.wait(list(uploads), timeout_s=args.timeout, on_update=update)
        for row in results:
            if row.get("id") in statuses:
                row["final"] = statuses[row["id"]]
                failed = failed or statuses[row["id"]].get("status") != "completed"
    if args.json:
        print_json(results)
    else:
        rows = []
        for row in results:
            final = row.get("final") or {}
            rows.append(
                [
                    Path(row["file"]).name,
                    row.get("id", ""),
                    final.get("status") or row.get("status") or "error",
                    row.get("error") or _error_text(final.get("error")) or final.get("stage") or "",
                ]
            )
        print(table(rows, ["file", "id", "status", "detail"]))
    return 1 if failed else 0


def cmd_status(client: ImagepipeClient, args: argparse.Namespace) -> int:
    body = client.status(args.id)
    if args.json:
        print_json(body)
    else:
        print(f"{body['id']}  {body.get('status')}  stage={body.get('stage')}  run={body.get('instanceId') or '-'}")
        if body.get("error"):
            print(f"error: {_error_text(body['error'])}")
    return 0


def cmd_get(client: ImagepipeClient, args: argparse.Namespace) -> int:
    record = client.get(args.id)
    if args.json:
        print_json(record)
        return 0
    tags = ", ".join(record.get("tags") or [])
    print(f"id:       {record['id']}\nstatus:   {record.get('status')}\nprofile:  {record.get('profile')}")
    print(f"tags:     {tags}\nlabels:   {', '.join(record.get('labelNames') or [])}")
    caption = ((record.get("analysis") or {}).get("captionResult") or {}).get("text")
    if caption:
        print(f"caption:  {caption}")
    if record.get("text"):
        print(f"text:     {record['text'][:300]}")
    _print_document_fields(record)
    if record.get("error"):
        print(f"error:    {_error_text(record['error'])}")
    return 0


def _print_document_fields(record: dict[str, Any]) -> None:
    """The record's typed document fields (docs/document-fields.md), one per line."""
    fields = (record.get("documentFields") or {}).get("fields") or {}
    if not fields:
        return
    print("fields:")
    for name, field in fields.items():
        value = field.get("normalized")
        if field.get("type") == "currency" and field.get("currencyCode"):
            value = f"{value} {field['currencyCode']}"
        print(f"  {name:<20} {value}  ({float(field.get('confidence') or 0):.0%})")


def cmd_search(client: ImagepipeClient, args: argparse.Namespace) -> int:
    filters = {
        "tag": args.tag,
        "label": args.label,
        "text": args.text,
        "profile": args.profile,
        "status": args.status,
        "from": args.created_from,
        "to": args.created_to,
        "nearDuplicateOf": args.near,
        "customLabel": args.custom_label,
        "limit": args.limit,
        "continuation": args.continuation,
    }
    body = client.search(**filters)
    if args.json:
        print_json(body)
        return 0
    rows = [
        [i["id"], i.get("status"), i.get("profile"), ", ".join((i.get("tags") or [])[:5]), i.get("createdAt")]
        for i in body["items"]
    ]
    print(table(rows, ["id", "status", "profile", "tags", "created"]))
    if body.get("continuation"):
        print(f"more: --continuation {body['continuation']}")
    return 0


def _run_filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "status": args.status,
        "profile": args.profile,
        "createdFrom": args.created_from,
        "createdTo": args.created_to,
    }


def cmd_runs(client: ImagepipeClient, args: argparse.Namespace) -> int:
    if args.runs_command == "list":
        body = client.runs(**_run_filters(args), top=args.top, continuation=args.continuation)
        if args.json:
            print_json(body)
            return 0
        rows = [
            [
                r["instanceId"],
                r["runtimeStatus"],
                r.get("stage"),
                r.get("profile"),
                r.get("createdTime"),
                "" if r.get("durationMs") is None else f"{r['durationMs'] / 1000:.1f}s",
                _error_text(r.get("error")),
            ]
            for r in body["items"]
        ]
        print(table(rows, ["run", "status", "stage", "profile", "created", "took", "error"], 70))
        print(f"{len(body['items'])} of {body.get('total')} runs")
        if body.get("continuation"):
            print(f"more: --continuation {body['continuation']}")
        return 0
    if args.runs_command == "show":
        run = client.run(args.id)
        if args.json:
            print_json(run)
            return 0
        print(f"run:     {run['instanceId']}  ({run['runtimeStatus']}, stage {run.get('stage')})")
        print(f"image:   {run.get('imageId')}  profile={run.get('profile')}  record={run['links'].get('record')}")
        print(f"created: {run.get('createdTime')}  updated: {run.get('lastUpdatedTime')}")
        if run.get("error"):
            print(f"failed:  {_error_text(run['error'])}")
        rows = []
        for step in run["timeline"]["steps"]:
            for attempt in step["attempts"]:
                error = attempt.get("error") or {}
                detail = f"{error.get('type')}: {error.get('message')}" if error else ""
                took = attempt.get("durationMs")
                rows.append(
                    [
                        step["name"],
                        attempt["attempt"],
                        attempt["outcome"],
                        "" if took is None else f"{took} ms",
                        detail,
                    ]
                )
        print(table(rows, ["step", "try", "outcome", "took", "error"], 90))
        return 0
    if args.runs_command == "replay":
        if args.id:
            body = client.replay(args.id, args.mode)
            if args.json:
                print_json(body)
            else:
                print(f"{body['instanceId']}: {body['action']} accepted (was {body.get('previousStatus')})")
            return 0
        dry_run = not args.yes
        body = client.replay_many(dry_run=dry_run, limit=args.limit, mode=args.mode, **_run_filters(args))
        if args.json:
            print_json(body)
            return 0
        rows = body.get("wouldReplay") if dry_run else body.get("replayed")
        print(
            table(
                [
                    [
                        r["instanceId"],
                        r["runtimeStatus"],
                        r["action"],
                        r.get("accepted", ""),
                        _error_text(r.get("error")),
                    ]
                    for r in rows or []
                ],
                ["run", "status", "action", "accepted", "error/reason"],
                70,
            )
        )
        print(f"{body['matched']} matched, {len(rows or [])} {'would be replayed' if dry_run else 'replayed'}")
        if dry_run:
            print("dry run: add --yes to replay them")
        return 0
    if args.runs_command == "purge":
        body = client.purge(args.id)
        if args.json:
            print_json(body)
        else:
            print(f"{args.id}: history purged")
        return 0
    return 2


def cmd_deadletters(client: ImagepipeClient, args: argparse.Namespace) -> int:
    if args.dl_command == "list":
        body = client.deadletters()
        if args.json:
            print_json(body)
            return 0
        rows = [
            [r["id"], r.get("imageId"), r.get("deadLetterReason"), r.get("deliveryAttempts"), r.get("publishTime")]
            for r in body["items"]
        ]
        print(table(rows, ["dead-letter", "image", "reason", "attempts", "published"], 70))
        for bad in body.get("unreadable") or []:
            print(f"unreadable blob {bad['blob']}: {bad['error']}", file=sys.stderr)
        return 0
    body = client.redrive(args.ids or None, dry_run=args.dry_run)
    if args.json:
        print_json(body)
        return 0
    rows = [[r["id"], r.get("imageId"), r["outcome"], r.get("instanceId") or r.get("reason")] for r in body["results"]]
    print(table(rows, ["dead-letter", "image", "outcome", "run / reason"], 70))
    print(f"deleted {len(body['deletedBlobs'])} dead-letter blobs")
    return 0


def cmd_stats(client: ImagepipeClient, args: argparse.Namespace) -> int:
    body = client.stats(args.window)
    if args.json:
        print_json(body)
        return 0
    print(
        f"last {body['windowMinutes']} min: {body['total']} runs  "
        + "  ".join(f"{k}={v}" for k, v in body["byStatus"].items())
    )
    print("stages: " + "  ".join(f"{k}={v}" for k, v in body["byStage"].items()))
    lat = body["latencyMs"]["completed"]
    print(
        f"throughput: {body['throughput']['completed']} completed ({body['throughput']['perMinute']}/min), "
        f"latency p50={lat['p50']} p95={lat['p95']} p99={lat['p99']} max={lat['max']} ms"
    )
    if body["failureReasons"]:
        print(
            table(
                [[r["count"], r["step"], r["code"], r.get("example")] for r in body["failureReasons"]],
                ["count", "step", "code", "example"],
                80,
            )
        )
    return 0


def cmd_smoke(client: ImagepipeClient, args: argparse.Namespace) -> int:
    from imagepipe.smoke import Check, run_smoke

    admin_key = args.admin_key if args.admin_key is not None else os.environ.get("IMAGEPIPE_ADMIN_KEY")

    def show(check: Check) -> None:
        if not args.json:
            print(f"  {check.outcome:<4}  {check.name:<12}  {check.detail}  ({check.seconds:.1f} s)", flush=True)

    if not args.json:
        print(f"imagepipe smoke against {client.base_url}")
    report = run_smoke(
        client.base_url,
        client.key,
        admin_key,
        image=args.image,
        profile=args.profile,
        timeout_s=args.timeout,
        on_check=show,
    )
    if args.json:
        print_json(report.to_json())
    else:
        failed = [c.name for c in report.checks if c.outcome == "FAIL"]
        skipped = sum(c.outcome == "SKIP" for c in report.checks)
        verdict = "PASSED" if report.passed else f"FAILED ({', '.join(failed)})"
        print(f"smoke {verdict}: {len(report.checks)} checks, {skipped} skipped; image {report.image_id or '-'}")
    return 0 if report.passed else 1


# ---------------------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(add_help=False)
    top.add_argument("--url", help="API base URL (default $IMAGEPIPE_URL or http://127.0.0.1:7071)")
    top.add_argument("--key", help="function/admin key (default $IMAGEPIPE_KEY)")
    top.add_argument("--json", action="store_true", help="print the API's JSON")
    # the same options after the sub-command; SUPPRESS keeps a value given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--key", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the API's JSON")

    parser = argparse.ArgumentParser(
        prog="imagepipe",
        description="imagepipe: upload and query images, operate runs, dead-letters and stats.",
        parents=[top],
    )
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("upload", parents=[common], help="upload image files")
    up.add_argument("files", nargs="+", metavar="FILE")
    up.add_argument("--profile")
    up.add_argument("--wait", action="store_true", help="wait until every image is completed or failed")
    up.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (with --wait)")

    for name, text in (("status", "an image's processing status"), ("get", "an image's record")):
        p = sub.add_parser(name, parents=[common], help=text)
        p.add_argument("id")

    se = sub.add_parser("search", parents=[common], help="search records")
    se.add_argument("--tag")
    se.add_argument("--label")
    se.add_argument("--text")
    se.add_argument("--profile")
    se.add_argument("--status", choices=["pending", "processing", "completed", "failed"])
    se.add_argument("--from", dest="created_from", metavar="TIME")
    se.add_argument("--to", dest="created_to", metavar="TIME")
    se.add_argument("--near", metavar="ID", help="near duplicates of this image")
    se.add_argument("--custom-label", metavar="SET:LABEL", help="custom label (docs/custom-labels.md)")
    se.add_argument("--limit", type=int)
    se.add_argument("--continuation")

    def run_filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--status", help="Pending|Running|Completed|Failed|Terminated (comma-separated)")
        p.add_argument("--profile")
        p.add_argument("--from", dest="created_from", metavar="TIME", help="created at or after (ISO 8601)")
        p.add_argument("--to", dest="created_to", metavar="TIME", help="created at or before (ISO 8601)")

    runs = sub.add_parser("runs", parents=[common], help="pipeline runs (operators)")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    rl = runs_sub.add_parser("list", parents=[common], help="list runs, newest first")
    run_filters(rl)
    rl.add_argument("--top", type=int, default=50)
    rl.add_argument("--continuation")
    rs = runs_sub.add_parser("show", parents=[common], help="a run's steps, attempts and errors")
    rs.add_argument("id", metavar="RUN_ID")
    rr = runs_sub.add_parser("replay", parents=[common], help="replay one run, or many by filter")
    rr.add_argument("id", nargs="?", metavar="RUN_ID", help="one run; omit to replay by filter (default: Failed)")
    rr.add_argument("--mode", choices=["auto", "rewind", "restart"], default="auto")
    run_filters(rr)
    rr.add_argument("--limit", type=int, default=100, help="at most this many runs (bulk)")
    rr.add_argument("--yes", action="store_true", help="bulk: really replay (default is a dry run)")
    rp = runs_sub.add_parser("purge", parents=[common], help="delete a finished run's history")
    rp.add_argument("id", metavar="RUN_ID")

    dls = sub.add_parser("deadletters", parents=[common], help="Event Grid events that never started a run")
    dl_sub = dls.add_subparsers(dest="dl_command", required=True)
    dl_sub.add_parser("list", parents=[common], help="list dead-lettered events")
    rd = dl_sub.add_parser("redrive", parents=[common], help="start the runs of dead-lettered events")
    rd.add_argument("ids", nargs="*", help="dead-letter ids, blob names, event ids or image ids (default: all)")
    rd.add_argument("--dry-run", action="store_true")

    st = sub.add_parser("stats", parents=[common], help="counts, failure reasons, throughput and latency")
    st.add_argument("--window", type=int, default=60, metavar="MINUTES")

    sm = sub.add_parser(
        "smoke", parents=[common], help="check a deployment end to end (upload, run, record, operator API)"
    )
    sm.add_argument("--admin-key", help="admin (master) key for the operator API checks (default $IMAGEPIPE_ADMIN_KEY)")
    sm.add_argument("--image", type=Path, help="image to upload (default: a generated PNG)")
    sm.add_argument("--profile", help="analysis profile (default: the app's default)")
    sm.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the run (default 300)")

    labels_cli.add_parser(sub, common)
    return parser


COMMANDS = {
    "upload": cmd_upload,
    "status": cmd_status,
    "get": cmd_get,
    "search": cmd_search,
    "runs": cmd_runs,
    "deadletters": cmd_deadletters,
    "stats": cmd_stats,
    "smoke": cmd_smoke,
    "labels": labels_cli.cmd_labels,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    client = ImagepipeClient(args.url, args.key)
    try:
        return COMMANDS[args.command](client, args)
    except ApiError as exc:
        if args.json:
            print_json({"error": {"status": exc.status, "code": exc.code, "message": exc.message}})
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
