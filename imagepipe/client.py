"""HTTP client of the imagepipe API (stdlib only), used by the CLI, ``make run`` and benchmarks.

Reads the base URL and key from arguments or ``IMAGEPIPE_URL`` / ``IMAGEPIPE_KEY``. Errors from the API
(``{"error": {"code", "message"}}``) are raised as ``ApiError`` carrying status, code and message.
"""

from __future__ import annotations

import json
import mimetypes
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:7071"
FINAL_STATUSES = ("completed", "failed")


#: The most status calls ``ImagepipeClient.wait`` makes a second, across all the images it waits for.
WAIT_MAX_CALLS_PER_S = 8.0
#: The longest ``Retry-After`` the client honours (seconds); a longer one is read as this.
MAX_RETRY_AFTER_S = 60.0


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header given as a number (the API's form), capped; None otherwise."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return None if seconds is None or seconds != seconds or seconds < 0 else min(seconds, MAX_RETRY_AFTER_S)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class ImagepipeClient:
    def __init__(self, base_url: str | None = None, key: str | None = None, timeout_s: float = 60.0) -> None:
        self.base_url = (base_url or os.environ.get("IMAGEPIPE_URL") or DEFAULT_URL).rstrip("/")
        self.key = key if key is not None else os.environ.get("IMAGEPIPE_KEY")
        self.timeout_s = timeout_s

    # -------------------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any, Mapping[str, str]]:
        query = {k: str(v) for k, v in (params or {}).items() if v is not None and v != ""}
        url = f"{self.base_url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        all_headers = dict(headers or {})
        if self.key:
            all_headers["x-functions-key"] = self.key
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers.setdefault("content-type", "application/json")
        req = urllib.request.Request(url, data=body, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
                status, resp_headers = resp.status, dict(resp.headers)
        except urllib.error.HTTPError as exc:
            raw, status, resp_headers = exc.read(), exc.code, dict(exc.headers or {})
        except urllib.error.URLError as exc:
            raise ApiError(0, "unreachable", f"cannot reach {self.base_url}: {exc.reason}") from exc
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode(errors="replace")
        if status >= 400:
            error = (data or {}).get("error", {}) if isinstance(data, dict) else {}
            raise ApiError(status, str(error.get("code", "http_error")), str(error.get("message", data)))
        return status, data, resp_headers

    def follow(self, url: str) -> Any:
        """GET a URL the API handed out (a status ``Location``, absolute or root-relative); only on this
        client's origin, so the key is never sent anywhere else."""
        ours = urllib.parse.urlsplit(self.base_url)
        theirs = urllib.parse.urlsplit(urllib.parse.urljoin(self.base_url + "/", url))
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            raise ApiError(0, "foreign_url", f"the API pointed to another origin ({theirs.scheme}://{theirs.netloc})")
        params = dict(urllib.parse.parse_qsl(theirs.query))
        return self.request("GET", theirs.path, params=params)[1]

    # ------------------------------------------------------------------------------------------- images
    def upload(self, path: str | Path, profile: str | None = None, metadata: Mapping[str, str] | None = None) -> Any:
        file = Path(path)
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        headers = {"content-type": content_type, "x-filename": urllib.parse.quote(file.name)}
        if metadata:
            headers["x-client-metadata"] = json.dumps(dict(metadata))
        return self.request(
            "POST", "/api/images", params={"profile": profile}, body=file.read_bytes(), headers=headers
        )[1]

    def status(self, image_id: str) -> Any:
        return self.request("GET", f"/api/images/{image_id}/status")[1]

    def get(self, image_id: str) -> Any:
        return self.request("GET", f"/api/images/{image_id}")[1]

    def search(self, **filters: Any) -> Any:
        return self.request("GET", "/api/images", params=filters)[1]

    def delete(self, image_id: str) -> None:
        self.request("DELETE", f"/api/images/{image_id}")

    def wait(
        self,
        image_ids: Iterable[str],
        timeout_s: float = 600.0,
        poll_s: float = 0.5,
        on_update: Callable[[str, Any], None] | None = None,
        max_calls_per_s: float = WAIT_MAX_CALLS_PER_S,
    ) -> dict[str, Any]:
        """Poll until every image is completed or failed (or the timeout passes); returns the last statuses.

        A polite client: each image is asked again no sooner than the API's ``Retry-After`` for it (``poll_s``
        when it gives none), the longest-waiting first, and no more than ``max_calls_per_s`` status calls go out
        a second in all. Each status call reads the record, the blob and the run, so a client asking for many
        pending images twice a second loaded the very service it waited on."""
        due = {image_id: 0.0 for image_id in image_ids}  # image -> when it may be asked again (monotonic)
        last: dict[str, Any] = {}
        deadline = time.monotonic() + timeout_s
        pace = 1.0 / max(max_calls_per_s, 0.01)
        while due and time.monotonic() < deadline:
            image_id = min(due, key=due.__getitem__)  # ties: the order they were given in
            ahead = due[image_id] - time.monotonic()
            if ahead > 0:
                time.sleep(min(ahead, max(0.0, deadline - time.monotonic())))
                continue
            status, retry_after = self._poll(image_id, last, on_update)
            if isinstance(status, dict) and status.get("status") in FINAL_STATUSES:
                del due[image_id]
            else:
                due[image_id] = time.monotonic() + (poll_s if retry_after is None else retry_after)
            if due:
                time.sleep(pace)
        for image_id in [i for i in due if i not in last]:  # timed out before their first turn: ask once
            self._poll(image_id, last, on_update)
        return last

    def _poll(
        self, image_id: str, last: dict[str, Any], on_update: Callable[[str, Any], None] | None
    ) -> tuple[Any, float | None]:
        """The image's status (recorded in ``last``, reported to ``on_update`` when it changed) and the seconds
        its ``Retry-After`` asks the client to wait (None without one)."""
        _, status, headers = self.request("GET", f"/api/images/{image_id}/status")
        if last.get(image_id) != status and on_update:
            on_update(image_id, status)
        last[image_id] = status
        return status, _retry_after_s(headers)

    # ---------------------------------------------------------------------------------------- operators
    def runs(self, **filters: Any) -> Any:
        return self.request("GET", "/api/runs", params=filters)[1]

    def run(self, instance_id: str) -> Any:
        return self.request("GET", f"/api/runs/{instance_id}")[1]

    def replay(self, instance_id: str, mode: str = "auto") -> Any:
        return self.request("POST", f"/api/runs/{instance_id}/replay", params={"mode": mode})[1]

    def replay_many(self, dry_run: bool, limit: int, mode: str = "auto", **filters: Any) -> Any:
        body = {"dryRun": dry_run, "limit": limit, "mode": mode, **filters}
        return self.request("POST", "/api/runs/replay", json_body=body)[1]

    def purge(self, instance_id: str) -> Any:
        return self.request("DELETE", f"/api/runs/{instance_id}")[1]

    def deadletters(self) -> Any:
        return self.request("GET", "/api/deadletters")[1]

    def redrive(self, ids: list[str] | None = None, dry_run: bool = False) -> Any:
        body: dict[str, Any] = {"dryRun": dry_run}
        if ids:
            body["ids"] = ids
        return self.request("POST", "/api/deadletters/redrive", json_body=body)[1]

    def stats(self, window_minutes: int = 60) -> Any:
        return self.request("GET", "/api/stats", params={"windowMinutes": window_minutes})[1]
