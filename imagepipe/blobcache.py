"""The bytes a run already validated, kept in this process for the run's next steps (no second download).

``fetch_image_metadata`` downloads and validates a blob version; ``analyze_image`` and ``read_text`` of the same
run usually execute in the same worker process moments later and read the bytes from here instead of
downloading them again. Entries are keyed by blob name and ETag (one version's bytes never change), bounded in
count and bytes (least recently used go first) and dropped when the run's last vision step is done. A miss
(another worker, a restart, an evicted entry) just downloads again: nothing depends on a hit. Image bytes
never pass through orchestration history.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

#: Enough for the images in flight at a host's activity concurrency (AI Vision accepts up to 20 MB each).
DEFAULT_MAX_BYTES = 96 * 1024 * 1024
DEFAULT_MAX_ENTRIES = 32


class ValidatedBytes:
    """A small, thread-safe LRU of blob-version bytes."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def put(self, blob_name: str, etag: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        key = (blob_name, etag)
        with self._lock:
            self._drop(key)
            self._entries[key] = data
            self._size += len(data)
            while self._size > self.max_bytes or len(self._entries) > self.max_entries:
                self._drop(next(iter(self._entries)))

    def get(self, blob_name: str, etag: str) -> bytes | None:
        key = (blob_name, etag)
        with self._lock:
            data = self._entries.get(key)
            if data is not None:
                self._entries.move_to_end(key)
            return data

    def discard(self, blob_name: str, etag: str) -> None:
        with self._lock:
            self._drop((blob_name, etag))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: tuple[str, str]) -> None:
        data = self._entries.pop(key, None)
        if data is not None:
            self._size -= len(data)
