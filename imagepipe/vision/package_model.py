"""``make package``: puts the custom labels' embedding model into the app package before a publish.

The deployed package is the checkout minus ``.funcignore`` (docs/deploy.md), which leaves ``.models/`` out;
custom labels run EfficientNet-Lite0 inside the Function App, so its ONNX file is copied beside the code, to
``imagepipe/vision/models/`` (git-ignored, kept in the package), where Terraform's ``CUSTOM_LABELS_MODEL_DIR``
points. Usage: ``python -m imagepipe.vision.package_model [SOURCE_DIR] [PACKAGE_DIR]``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from imagepipe.vision.classifier import ONNX_NAME
from imagepipe.vision.runtime import APP_ROOT, DEFAULT_MODEL_DIR

#: Relative to the package root; infra/terraform/main.functions.tf sets CUSTOM_LABELS_MODEL_DIR to it.
PACKAGE_MODEL_DIR = "imagepipe/vision/models"


def package_embedding_model(source_dir: Path = DEFAULT_MODEL_DIR, package_dir: Path | None = None) -> Path:
    """Copy the model file (atomically) into the package folder; returns the copied file."""
    source = source_dir / ONNX_NAME
    if not source.is_file():
        raise SystemExit(f"{source} is missing: run `make models` first")
    target_dir = package_dir or APP_ROOT / PACKAGE_MODEL_DIR
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / ONNX_NAME
    partial = target.with_suffix(".partial")
    shutil.copyfile(source, partial)
    partial.replace(target)
    return target


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else DEFAULT_MODEL_DIR
    package = Path(argv[1]) if len(argv) > 1 else None
    print(f"custom labels' model packaged: {package_embedding_model(source, package)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
