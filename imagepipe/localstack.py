"""``make run``: start the local stack (Azurite + devhost running function_app.py), upload the sample images,
wait for their runs and print a per-image summary; then keep serving until Ctrl-C.

Usage: ``python -m imagepipe.localstack [--port 7071] [--state .state] [--samples samples] [--exit]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from devhost.process import DevhostExited, DevhostProcess, make_private_dir
from imagepipe.client import ImagepipeClient

ROOT = Path(__file__).resolve().parent.parent
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


def sample_files(folder: Path) -> list[tuple[Path, str]]:
    """Sample images with their profile (``profiles.json`` beside them maps file name -> profile)."""
    mapping: dict[str, str] = {}
    manifest = folder / "profiles.json"
    if manifest.exists():
        mapping = json.loads(manifest.read_text(encoding="utf-8"))
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return [(p, mapping.get(p.name, "general")) for p in files]


def summary_rows(
    client: ImagepipeClient, uploads: dict[str, tuple[Path, str]], statuses: dict[str, Any]
) -> list[list[str]]:
    rows = []
    for image_id, (path, profile) in uploads.items():
        status = statuses.get(image_id, {}).get("status", "?")
        tags = labels = text = dupes = ""
        detail = ""
        if status == "completed":
            record = client.get(image_id)
            values = ((record.get("analysis") or {}).get("tagsResult") or {}).get("values", [])
            tags = ", ".join(t["name"] for t in values[:4])
            labels = ", ".join(record.get("labelNames") or [])
            text = str(len(record.get("text") or ""))
            dupes = str(len(record.get("nearDuplicates") or []))
        elif status == "failed":
            error = statuses[image_id].get("error") or {}
            detail = f"{error.get('step')}: {error.get('message')}"
        rows.append([path.name, profile, status, tags or detail, labels, text, dupes])
    return rows


def print_table(rows: list[list[str]]) -> None:
    header = ["image", "profile", "status", "top tags / error", "labels", "ocr chars", "near dups"]
    widths = [min(60, max(len(str(r[i])) for r in [header, *rows])) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(str(c)[:w].ljust(w) for c, w in zip(row, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--state", type=Path, default=ROOT / ".state")
    parser.add_argument("--samples", type=Path, default=ROOT / "samples")
    parser.add_argument("--exit", action="store_true", help="stop the stack after printing the summary")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the sample runs")
    args = parser.parse_args(argv)

    # The devhost runs in a process group of its own (so it is stopped as a whole, Azurite included): a
    # terminal hang-up or a kill reaches only this process, which then stops it in ``finally`` below.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup's choice stands
            signal.signal(sig, _interrupt)
    make_private_dir(args.state)
    env = dict(os.environ)
    env.setdefault("RECORDS_SQLITE_PATH", str(args.state / "records.sqlite3"))
    host = DevhostProcess(ROOT, args.state / "devhost", port=args.port, env=env, no_auth=True)
    print(f"starting: {' '.join(host.command)}\n  (its log: {host.log})", flush=True)
    client = ImagepipeClient(host.base, key="")
    try:
        try:
            host.start(timeout=120)
        except (DevhostExited, TimeoutError) as exc:
            raise SystemExit(f"error: {exc}\n(the devhost's log: {host.log})") from exc
        from imagepipe.composition import services

        os.environ.update({k: v for k, v in env.items() if k not in os.environ})
        _load_local_settings()
        services().blobs.ensure_container()
        # the dashboard's upload form PUTs to Azurite from the devhost's origin: the same CORS rule as Azure
        from imagepipe.cors import apply_local_cors, devhost_origins

        origins = devhost_origins(args.port, os.environ.get("IMAGES_CORS_ORIGINS"))
        apply_local_cors(os.environ["IMAGES_STORAGE"], origins)
        uploads: dict[str, tuple[Path, str]] = {}
        for path, profile in sample_files(args.samples):
            body = client.upload(path, profile=profile, metadata={"source": "samples"})
            uploads[body["id"]] = (path, profile)
            print(f"uploaded {path.name:28s} profile={profile:15s} id={body['id']}", flush=True)
        started = time.monotonic()
        statuses = client.wait(
            uploads,
            timeout_s=args.timeout,
            on_update=lambda i, s: print(f"  {uploads[i][0].name:28s} {s.get('status')}: {s.get('stage')}", flush=True),
        )
        print(f"\n{len(uploads)} images in {time.monotonic() - started:.1f} s\n")
        print_table(summary_rows(client, uploads, statuses))
        failed = [i for i, s in statuses.items() if s.get("status") != "completed"]
        if args.exit:
            return 1 if failed else 0
        print(
            f"\nThe stack is running at http://127.0.0.1:{args.port}/api (try: imagepipe search --tag cat). "
            "Ctrl-C stops it.",
            flush=True,
        )
        host.wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        host.stop(grace=20)


def _interrupt(signum: int, frame: object) -> None:
    """Treat SIGTERM/SIGHUP like Ctrl-C: unwind, so the devhost is stopped on the way out."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _load_local_settings() -> None:
    """Make this process see the app settings the devhost loads (for creating the images container)."""
    path = ROOT / "local.settings.json"
    if path.exists():
        values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
        for key, value in values.items():
            os.environ.setdefault(key, str(value))


if __name__ == "__main__":
    raise SystemExit(main())
