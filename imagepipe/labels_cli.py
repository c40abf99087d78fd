"""``imagepipe labels train|list|show|test|activate|delete``: custom label sets from the command line (admin key).

Talks to the label set API (``/api/labelsets``, docs/custom-labels.md) through ``ImagepipeClient``. Examples for
``train`` are given per label: ``--label dress a.jpg b.jpg 01m8vk...`` (a path that exists is sent as base64
bytes; anything else must be an uploaded image's id).
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path
from typing import Any

from imagepipe.client import ImagepipeClient


def _example(value: str) -> Any:
    path = Path(value)
    if path.is_file():
        return {"data": base64.b64encode(path.read_bytes()).decode("ascii")}
    return value  # an image id: the API checks it


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _version_line(v: dict[str, Any]) -> str:
    labels = ", ".join(f"{label['name']}({label['examples']})" for label in v.get("labels", []))
    loo = (v.get("loo") or {}).get("accuracy")
    mark = "*" if v.get("active") else " "
    return (
        f"{mark} v{v.get('version')}  {v.get('createdAt')}  LOO {loo}  threshold {v.get('threshold')} "
        f"({v.get('thresholdSource')})  {labels}"
    )


def _show(body: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print(body)
    else:
        print(_version_line(body))


def cmd_labels(client: ImagepipeClient, args: argparse.Namespace) -> int:
    command = args.labels_command
    base = f"/api/labelsets/{getattr(args, 'profile', 'general')}/{getattr(args, 'name', '')}"
    version = {"version": getattr(args, "version", None)}
    if command == "train":
        labels: dict[str, list[Any]] = {}
        for name, *examples in args.label:
            labels.setdefault(name, []).extend(_example(e) for e in examples)
        body = client.request(
            "POST", "/api/labelsets", json_body={"profile": args.profile, "name": args.name, "labels": labels}
        )[1]
        if args.json:
            _print(body)
        else:
            print(f"trained {body['profile']}/{body['name']} version {body['version']} (active)")
            print(_version_line(body))
        return 0
    if command == "list":
        body = client.request("GET", "/api/labelsets", params={"profile": args.filter_profile})[1]
        if args.json:
            _print(body)
            return 0
        for entry in body["items"]:
            print(f"{entry['profile']}/{entry['name']}  active v{entry['activeVersion']}")
            for v in entry["versions"]:
                print("  " + _version_line(v))
        return 0
    if command == "show":
        body = client.request("GET", base, params=version)[1]
        _show(body, args.json)
        return 0
    if command == "test":
        data = Path(args.image).read_bytes()
        body = client.request(
            "POST", base + "/test", params=version, body=data, headers={"content-type": "application/octet-stream"}
        )[1]
        if args.json:
            _print(body)
        else:
            scores = f"confidence {body['confidence']}  similarity {body['similarity']}"
            print(f"{body['name']}  {scores}  (v{body['version']})")
        return 0
    if command == "activate":
        body = client.request("POST", f"{base}/versions/{args.version}/activate")[1]
        _show(body, args.json)
        return 0
    body = client.request("DELETE", base, params=version)[1]
    if args.json:
        _print(body)
    else:
        print(f"deleted {body['deleted']} version(s)")
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """The ``labels`` command and its sub-commands."""
    labels = sub.add_parser("labels", parents=[common], help="custom label sets (admin): train, list, test, ...")
    labels_sub = labels.add_subparsers(dest="labels_command", required=True)

    def key(p: argparse.ArgumentParser, with_version: bool = True) -> None:
        p.add_argument("name", help="label set name")
        p.add_argument("--profile", default="general")
        if with_version:
            p.add_argument("--version", type=int, help="a version (default: the active one)")

    tr = labels_sub.add_parser("train", parents=[common], help="train a new version from examples")
    key(tr, with_version=False)
    tr.add_argument(
        "--label",
        nargs="+",
        action="append",
        required=True,
        metavar=("LABEL", "EXAMPLE"),
        help="a label and its examples (image files or uploaded image ids); repeat per label",
    )
    ls = labels_sub.add_parser("list", parents=[common], help="label sets and their versions")
    ls.add_argument("--profile", dest="filter_profile")
    key(labels_sub.add_parser("show", parents=[common], help="one version (default: the active one)"))
    te = labels_sub.add_parser("test", parents=[common], help="classify an image file (nothing is recorded)")
    key(te)
    te.add_argument("image", help="image file")
    ac = labels_sub.add_parser("activate", parents=[common], help="make a version the active one")
    ac.add_argument("name")
    ac.add_argument("version", type=int)
    ac.add_argument("--profile", default="general")
    key(labels_sub.add_parser("delete", parents=[common], help="delete a version (--version) or the whole set"))
