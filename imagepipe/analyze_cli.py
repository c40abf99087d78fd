"""``python -m imagepipe analyze FILE... [--profile P]``: run the local analyzer on files, one JSON per line.

Each line is ``{"file", "profile", "analysis", "textHeavy", "labels"}`` (plus ``readResult`` when the
profile's OCR policy says the image is text-heavy), the same decisions the pipeline makes. A file that
cannot be analysed prints ``{"file", "error": {"code", "message"}}`` and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from imagepipe.errors import ImagepipeError
from imagepipe.ports import AnalysisRequest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m imagepipe analyze", description="Analyze image files with the local, offline models."
    )
    parser.add_argument("files", nargs="+", type=Path, help="image files (JPEG, PNG, GIF, BMP, TIFF, WebP)")
    parser.add_argument("--profile", default="general", help="analysis profile (default: general)")
    parser.add_argument("--profiles-file", default=None, help="JSON file of extra profiles (PROFILES_FILE)")
    parser.add_argument("--model-dir", default=None, help="model directory (default: .models)")
    parser.add_argument("--indent", type=int, default=None, help="pretty-print with this indent")
    return parser


def analyze_file(analyzer: Any, path: Path, profile: Any) -> dict[str, Any]:
    from imagepipe import policy

    data = path.read_bytes()
    request = AnalysisRequest(features=profile.features, extras=profile.extras, profile=profile.name)
    analysis = analyzer.analyze(data, request)
    out: dict[str, Any] = {"file": str(path), "profile": profile.name, "analysis": analysis}
    text_heavy = policy.is_text_heavy(analysis, profile)
    read_result = analysis.get("readResult")
    if text_heavy and read_result is None:
        read_result = analyzer.read_text(data, request)["readResult"]
        out["readResult"] = read_result
    out["textHeavy"] = text_heavy
    out["labels"] = policy.derive_labels(analysis, read_result, profile)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from imagepipe.profiles import load_profiles, resolve_profile
    from imagepipe.vision import LocalAnalyzer

    try:
        profile = resolve_profile(load_profiles(args.profiles_file), args.profile)
    except ImagepipeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    analyzer = LocalAnalyzer(args.model_dir)
    status = 0
    for path in args.files:
        try:
            line: dict[str, Any] = analyze_file(analyzer, path, profile)
        except OSError as exc:
            line, status = {"file": str(path), "error": {"code": "unreadable_file", "message": str(exc)}}, 1
        except ImagepipeError as exc:
            line, status = {"file": str(path), **exc.to_json()}, 1
        print(json.dumps(line, indent=args.indent), flush=True)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
