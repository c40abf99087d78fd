"""``make run``: start the local stack (Azurite + devhost running function_app.py), upload the sample images,
wait for their runs and print a per-image summary; then keep serving until Ctrl-C.

Usage: ``python -m imagepipe.localstack [--port 7071] [--state .state] [--samples samples] [--exit]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

from imagepipe.client import ApiError, ImagepipeClient

ROOT = Path(__file__).resolve().parent.parent
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


def make_private_dir(path: Path) -> None:
    """The state folder holds keys, task hub inputs, records and blobs: owner-only (0700)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def open_private_log(path: Path) -> BinaryIO:
    """Open the devhost log for appending, readable by the owner only (0600, also when it already existed).

    The devhost never prints keys into a redirected log; this keeps whatever it does log private too.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


def wait_until_running(client: ImagepipeClient, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: the devhost exited with code {proc.returncode}; see its log in the state folder")
        try:
            _, body, _ = client.request("GET", "/admin/host/status")
            if isinstance(body, dict) and body.get("state") == "Running":
                return
        except ApiError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"error: the devhost did not report Running within {timeout_s:.0f} s")


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

    make_private_dir(args.state)
    env = dict(os.environ)
    env.setdefault("RECORDS_SQLITE_PATH", str(args.state / "records.sqlite3"))
    command = [
        sys.executable,
        "-m",
        "devhost",
        "start",
        "--app",
        str(ROOT),
        "--port",
        str(args.port),
        "--state",
        str(args.state / "devhost"),
        "--no-auth",
    ]
    log_path = args.state / "devhost.log"
    print(f"starting: {' '.join(command)}\n  (its log: {log_path})", flush=True)
    log_file = open_private_log(log_path)
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    client = ImagepipeClient(f"http://127.0.0.1:{args.port}", key="")
    try:
        wait_until_running(client, proc, timeout_s=120)
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
        proc.wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _load_local_settings() -> None:
    """Make this process see the app settings the devhost loads (for creating the images container)."""
    path = ROOT / "local.settings.json"
    if path.exists():
        values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
        for key, value in values.items():
            os.environ.setdefault(key, str(value))


if __name__ == "__main__":
    raise SystemExit(main())
