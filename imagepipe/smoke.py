"""``imagepipe smoke``: check a deployed app end to end, as a client and as an operator would.

Uploads one fresh image (``POST /api/images``, function key), follows the ``Location`` status URL until the
run completes, reads the record, then with the admin key finds the run in the operator API
(``/api/runs?imageId=``), opens it (``/api/runs/{id}``), walks ``/api/runs`` one run per page with the
continuation tokens, and reads ``/api/stats``. Each check prints PASS, FAIL or SKIP with its reason; the
exit status is 0 only when no check failed. Keys travel in the ``x-functions-key`` header, only to the
given URL's origin, and are never printed (any echo of one is masked).
"""

from __future__ import annotations

import io
import json
import random
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagepipe.client import FINAL_STATUSES, ApiError, ImagepipeClient

#: Runs walked when checking the operator API's paging (one per page).
PAGE_WALK = 3


@dataclass
class Check:
    name: str
    outcome: str  # PASS | FAIL | SKIP
    detail: str
    seconds: float = 0.0


@dataclass
class SmokeReport:
    url: str
    checks: list[Check] = field(default_factory=list)
    image_id: str | None = None
    instance_id: str | None = None

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.outcome != "FAIL" for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "passed": self.passed,
            "imageId": self.image_id,
            "instanceId": self.instance_id,
            "checks": [c.__dict__ for c in self.checks],
        }


class _Failed(Exception):
    """A check failed: its message is the reason printed."""


def sample_png() -> tuple[bytes, str]:
    """A small PNG unique to this run (so it is never a duplicate of an earlier upload)."""
    from PIL import Image, ImageDraw

    rng = random.Random()
    image = Image.new("RGB", (320, 240), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randrange(280), rng.randrange(200)
        draw.rectangle((x, y, x + 40, y + 40), fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw.text((10, 10), "imagepipe smoke", fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue(), "smoke.png"


def _mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def run_smoke(
    url: str,
    key: str | None,
    admin_key: str | None,
    *,
    image: Path | None = None,
    profile: str | None = None,
    timeout_s: float = 300.0,
    poll_s: float = 1.0,
    on_check: Callable[[Check], None] | None = None,
) -> SmokeReport:
    """Run every check against ``url``; a failed step skips the steps that need its result."""
    client = ImagepipeClient(url, key or "")
    admin = ImagepipeClient(url, admin_key or "") if admin_key is not None else None
    report = SmokeReport(client.base_url)
    secrets = [s for s in (key, admin_key) if s]
    state: dict[str, Any] = {}

    def check(name: str, step: Callable[[], str], needs: tuple[str, ...] = (), admin_step: bool = False) -> None:
        missing = [n for n in needs if n not in state]
        if missing:
            result = Check(name, "SKIP", f"needs {', '.join(missing)}, which failed")
        else:
            started = time.monotonic()
            try:
                result = Check(name, "PASS", step())
            except _Failed as exc:
                result = Check(name, "FAIL", str(exc))
            except ApiError as exc:
                if exc.status in (401, 403):
                    which = "--admin-key (the admin/master key)" if admin_step else "--key (a function key)"
                    result = Check(name, "FAIL", f"HTTP {exc.status}: the key was refused; check {which}")
                else:
                    result = Check(name, "FAIL", f"HTTP {exc.status} {exc.code}: {exc.message}")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                result = Check(name, "FAIL", f"unexpected answer ({type(exc).__name__}: {exc})")
            result.seconds = round(time.monotonic() - started, 2)
        result.detail = _mask(result.detail, secrets)
        report.checks.append(result)
        if on_check:
            on_check(result)

    def upload() -> str:
        if image is not None:
            data, name = image.read_bytes(), image.name
        else:
            data, name = sample_png()
        content_type = "image/png" if name.lower().endswith(".png") else "image/jpeg"
        status, body, headers = client.request(
            "POST",
            "/api/images",
            params={"profile": profile},
            body=data,
            headers={
                "content-type": content_type,
                "x-filename": urllib.parse.quote(name),
                "x-client-metadata": '{"source": "smoke"}',
            },
        )
        location = {k.lower(): v for k, v in headers.items()}.get("location")
        if status != 202 or not isinstance(body, dict) or not body.get("id") or not location:
            raise _Failed(f"expected 202 with an id and a Location header, got {status}")
        state["upload"] = body
        state["location"] = location
        report.image_id = str(body["id"])
        return f"202 Accepted, image {body['id']} ({len(data)} bytes, profile {body.get('profile')})"

    def completes() -> str:
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = client.follow(state["location"])
            if last.get("status") in FINAL_STATUSES:
                break
            time.sleep(poll_s)
        if last.get("status") != "completed":
            error = last.get("error") or {}
            reason = f"{error.get('step')}: {error.get('code')}: {error.get('message')}" if error else "no error given"
            raise _Failed(
                f"status {last.get('status') or 'unknown'} (stage {last.get('stage')}) after "
                f"{timeout_s:g} s at most; {reason}"
            )
        state["status"] = last
        report.instance_id = last.get("instanceId") or report.instance_id
        return f"completed (run {last.get('instanceId') or '?'})"

    def record() -> str:
        body = client.get(str(report.image_id))
        analysis = body.get("analysis")
        if body.get("id") != report.image_id or body.get("status") != "completed":
            raise _Failed(f"record {body.get('id')} has status {body.get('status')}")
        if not isinstance(analysis, dict) or not analysis:
            raise _Failed("the record holds no analysis")
        results = sorted(k for k in analysis if k.endswith("Result"))
        state["record"] = body
        return f"status completed, analysis with {', '.join(results) or 'no feature results'}"

    def listed() -> str:
        assert admin is not None
        body = admin.runs(imageId=report.image_id, top=10)
        items = body.get("items") or []
        mine = [r for r in items if r.get("imageId") == report.image_id]
        if not mine:
            raise _Failed(f"/api/runs?imageId={report.image_id} listed no run of this image")
        run = mine[0]
        if run.get("runtimeStatus") != "Completed":
            raise _Failed(f"run {run.get('instanceId')} is {run.get('runtimeStatus')}")
        state["run"] = run
        report.instance_id = str(run["instanceId"])
        return f"run {run['instanceId']} Completed in {run.get('durationMs')} ms"

    def detail() -> str:
        assert admin is not None
        run = admin.run(str(report.instance_id))
        steps = {s["name"]: s for s in (run.get("timeline") or {}).get("steps") or []}
        if run.get("runtimeStatus") != "Completed" or "analyze_image" not in steps:
            raise _Failed(f"run {report.instance_id}: {run.get('runtimeStatus')}, steps {sorted(steps)}")
        return f"timeline steps {', '.join(steps)}"

    def pages() -> str:
        assert admin is not None
        seen: list[str] = []
        totals: set[int] = set()
        continuation: str | None = None
        for _ in range(PAGE_WALK):
            body = admin.runs(top=1, continuation=continuation)
            items = body.get("items") or []
            totals.add(int(body.get("total") or 0))
            if len(items) > 1:
                raise _Failed(f"top=1 answered {len(items)} runs")
            seen.extend(str(r.get("instanceId")) for r in items)
            continuation = body.get("continuation")
            if not continuation:
                break
        if len(set(seen)) != len(seen):
            raise _Failed(f"a run came back on two pages: {seen}")
        if not seen:
            raise _Failed("/api/runs listed no runs at all")
        total = max(totals)
        if len(seen) < min(total, PAGE_WALK):
            raise _Failed(f"total {total} but the pages ended after {len(seen)} runs")
        return f"{len(seen)} page(s) of one run each via continuation tokens; {total} runs in total"

    def stats() -> str:
        assert admin is not None
        body = admin.stats(60)
        if int(body.get("total") or 0) < 1:
            raise _Failed("/api/stats counted no run in the last 60 minutes")
        return f"{body['total']} runs in the last 60 min: {json.dumps(body.get('byStatus'))}"

    check("upload", upload)
    check("completes", completes, ("upload",))
    check("record", record, ("status",))
    if admin is None:
        for name in ("run listed", "run detail", "runs paging", "stats"):
            check_skip = Check(name, "SKIP", "no --admin-key (or IMAGEPIPE_ADMIN_KEY): operator API not checked")
            report.checks.append(check_skip)
            if on_check:
                on_check(check_skip)
        return report
    check("run listed", listed, ("status",), admin_step=True)
    check("run detail", detail, ("run",), admin_step=True)
    check("runs paging", pages, admin_step=True)
    check("stats", stats, admin_step=True)
    return report
