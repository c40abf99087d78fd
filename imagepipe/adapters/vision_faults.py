"""Fault injection around any vision adapter, for rehearsing outages (operators' game days and tests).

Enabled only when the ``VISION_FAULT_PLAN`` setting names a JSON file:
``{"rules": [{"sha256": "<image sha256>" | "*", "fault": "transient" | "permanent", "times": 2}]}``.
A matching call raises ``TransientServiceError`` (as a 503/429 would) or ``PermanentImageError`` (as an
invalid image would) instead of calling the real adapter; ``times`` bounds how many calls fail (absent:
every call). The file is re-read when it changes, so deleting a rule "clears the outage".
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any

from imagepipe.errors import ConfigurationError, PermanentImageError, TransientServiceError
from imagepipe.ports import AnalysisRequest, JsonDict, VisionAnalyzer


class FaultInjectingVision:
    def __init__(self, inner: VisionAnalyzer, plan_path: str) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.plan_path = plan_path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._rules: list[dict[str, Any]] = []
        self._fired: dict[tuple[int, str], int] = {}

    def _current_rules(self) -> list[dict[str, Any]]:
        try:
            mtime = os.stat(self.plan_path).st_mtime
        except FileNotFoundError:
            self._rules, self._mtime = [], None
            return []
        if mtime != self._mtime:
            try:
                plan = json.loads(open(self.plan_path, encoding="utf-8").read() or "{}")
            except ValueError as exc:
                raise ConfigurationError(f"VISION_FAULT_PLAN {self.plan_path} is not JSON: {exc}") from exc
            self._rules, self._mtime, self._fired = list(plan.get("rules", [])), mtime, {}
        return self._rules

    def _maybe_fail(self, image: bytes, operation: str) -> None:
        digest = hashlib.sha256(image).hexdigest()
        with self._lock:
            for index, rule in enumerate(self._current_rules()):
                if rule.get("sha256") not in ("*", digest) or rule.get("operation", operation) != operation:
                    continue
                key = (index, digest)
                times = rule.get("times")
                if times is not None and self._fired.get(key, 0) >= int(times):
                    continue
                self._fired[key] = self._fired.get(key, 0) + 1
                if rule.get("fault") == "permanent":
                    raise PermanentImageError(
                        f"injected permanent fault (VISION_FAULT_PLAN rule {index}): the service rejected the image",
                        code="InvalidImageFormat",
                    )
                raise TransientServiceError(
                    f"injected transient fault (VISION_FAULT_PLAN rule {index}): the service answered 503",
                    retry_after_s=1,
                )

    def analyze(self, image: bytes, request: AnalysisRequest) -> JsonDict:
        self._maybe_fail(image, "analyze")
        return self.inner.analyze(image, request)

    def read_text(self, image: bytes, request: AnalysisRequest) -> JsonDict:
        self._maybe_fail(image, "read_text")
        return self.inner.read_text(image, request)
