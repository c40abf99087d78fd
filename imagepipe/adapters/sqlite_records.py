"""Record store over one SQLite file (local mode): a JSON document per image plus indexed columns.

Layout: ``records`` holds the document and the columns the API filters and sorts on (profile, status,
createdAt, updatedAt, blob lastModified/ETag, the 64-bit pHash as a signed integer); ``record_terms`` holds
one row per tag, label name and near-duplicate link; ``records_fts`` (FTS5) indexes the OCR ``text``. The
database runs in WAL mode with one connection per thread; writes that compare versions run inside
``BEGIN IMMEDIATE`` so racing writers serialize and the newest blob version wins.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from imagepipe.adapters.records_common import (
    JsonDict,
    clamp_limit,
    decode_token,
    encode_token,
    hamming,
    is_older_version,
    phash_to_int,
    project,
    record_phash,
    sortable_ts,
    to_signed64,
)
from imagepipe.errors import InvalidInputError
from imagepipe.ports import SearchPage, SearchQuery

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    profile TEXT,
    status TEXT,
    created_at TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL DEFAULT '',
    blob_last_modified TEXT NOT NULL DEFAULT '',
    blob_etag TEXT NOT NULL DEFAULT '',
    phash INTEGER
);
CREATE INDEX IF NOT EXISTS records_created ON records (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS records_profile ON records (profile, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS records_status ON records (status, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS records_phash ON records (phash) WHERE phash IS NOT NULL;
CREATE TABLE IF NOT EXISTS record_terms (
    id TEXT NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, value, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS record_terms_id ON record_terms (id);
CREATE VIRTUAL TABLE IF NOT EXISTS records_fts USING fts5 (text, tokenize = 'unicode61');
"""

# The FTS rows share the rowid of their record (an upsert keeps the rowid).
_DELETE_FTS = "DELETE FROM records_fts WHERE rowid = (SELECT rowid FROM records WHERE id = ?)"
_TOKEN = re.compile(r"\w+", re.UNICODE)


def _hamming_udf(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else hamming(a, b)


class SqliteRecordStore:
    """``imagepipe.ports.RecordStore`` over a SQLite file (created on first use, parent folders included)."""

    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._conn().executescript(_SCHEMA)

    # -- connections --------------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.create_function("hamming", 2, _hamming_udf, deterministic=True)
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _tx(self) -> _Transaction:
        return _Transaction(self._conn())

    def close(self) -> None:
        """Close every connection this store opened (all threads)."""
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- RecordStore --------------------------------------------------------------------------------

    def get(self, image_id: str) -> JsonDict | None:
        row = self._conn().execute("SELECT doc FROM records WHERE id = ?", (image_id,)).fetchone()
        return None if row is None else _load(row[0])

    def upsert_if_not_older(self, record: JsonDict) -> bool:
        image_id = record.get("id")
        if not isinstance(image_id, str) or not image_id:
            raise InvalidInputError("a record needs a string 'id'")
        doc = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        with self._tx() as conn:
            row = conn.execute("SELECT doc FROM records WHERE id = ?", (image_id,)).fetchone()
            if row is not None and is_older_version(record, _load(row[0])):
                return False
            self._write(conn, image_id, record, doc)
        return True

    def delete(self, image_id: str) -> bool:
        with self._tx() as conn:
            conn.execute(_DELETE_FTS, (image_id,))
            cur = conn.execute("DELETE FROM records WHERE id = ?", (image_id,))
            return cur.rowcount > 0

    def search(self, query: SearchQuery) -> SearchPage:
        limit = clamp_limit(query.limit)
        where: list[str] = []
        args: list[Any] = []
        if query.profile is not None:
            where.append("r.profile = ?")
            args.append(query.profile)
        if query.status is not None:
            where.append("r.status = ?")
            args.append(query.status)
        if query.created_from is not None:
            where.append("r.created_at >= ?")
            args.append(sortable_ts(query.created_from))
        if query.created_to is not None:
            where.append("r.created_at <= ?")
            args.append(sortable_ts(query.created_to))
        for kind, value in (("tag", query.tag), ("label", query.label)):
            if value is not None:
                where.append("EXISTS (SELECT 1 FROM record_terms t WHERE t.kind = ? AND t.value = ? AND t.id = r.id)")
                args += [kind, value]
        if query.text is not None:
            match = _fts_query(query.text)
            if match is None:
                return SearchPage(items=[], continuation=None)
            where.append("r.rowid IN (SELECT rowid FROM records_fts WHERE records_fts MATCH ?)")
            args.append(match)
        if query.near_duplicate_of is not None:
            linked = self._linked_ids(query.near_duplicate_of)
            where.append(
                "(r.id IN (SELECT value FROM json_each(?)) OR EXISTS (SELECT 1 FROM record_terms t "
                "WHERE t.kind = 'dup' AND t.value = ? AND t.id = r.id)) AND r.id <> ?"
            )
            args += [json.dumps(linked), query.near_duplicate_of, query.near_duplicate_of]
        if query.continuation:
            position = decode_token(query.continuation)
            created, last_id = position.get("c"), position.get("i")
            if not isinstance(created, str) or not isinstance(last_id, str):
                raise InvalidInputError("continuation token is malformed", code="invalid_continuation")
            where.append("(r.created_at < ? OR (r.created_at = ? AND r.id < ?))")
            args += [created, created, last_id]
        sql = "SELECT r.doc, r.created_at, r.id FROM records r"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.created_at DESC, r.id DESC LIMIT ?"
        rows = self._conn().execute(sql, [*args, limit + 1]).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        token = encode_token({"c": rows[-1][1], "i": rows[-1][2]}) if more and rows else None
        return SearchPage(items=[_load(r[0]) for r in rows], continuation=token)

    def near_duplicates(self, phash: str, *, max_distance: int, exclude_id: str, limit: int = 20) -> list[JsonDict]:
        target = phash_to_int(phash)
        if target is None:
            raise InvalidInputError(f"'{phash[:32]}' is not a 64-bit perceptual hash (16 hex digits)")
        rows = (
            self._conn()
            .execute(
                "SELECT doc, d FROM (SELECT doc, id, hamming(phash, ?) AS d FROM records "
                "WHERE phash IS NOT NULL AND id <> ?) WHERE d <= ? ORDER BY d, id LIMIT ?",
                (to_signed64(target), exclude_id, max_distance, max(1, limit)),
            )
            .fetchall()
        )
        return [_load(r[0]) for r in rows]

    def iter_all(self, *, fields: Sequence[str] | None = None) -> Iterator[JsonDict]:
        keep = tuple(fields) if fields is not None else None
        last = ""
        conn = self._conn()
        while True:
            rows = conn.execute("SELECT id, doc FROM records WHERE id > ? ORDER BY id LIMIT 500", (last,)).fetchall()
            if not rows:
                return
            for _image_id, doc in rows:
                yield project(_load(doc), keep)
            last = rows[-1][0]

    # -- internals ----------------------------------------------------------------------------------

    def _linked_ids(self, image_id: str) -> list[str]:
        record = self.get(image_id)
        links = (record or {}).get("nearDuplicates") or []
        return [d["id"] for d in links if isinstance(d, dict) and isinstance(d.get("id"), str)]

    @staticmethod
    def _write(conn: sqlite3.Connection, image_id: str, record: JsonDict, doc: str) -> None:
        blob = record.get("blob") if isinstance(record.get("blob"), dict) else {}
        ph = phash_to_int(record_phash(record))
        conn.execute(
            "INSERT INTO records (id, doc, profile, status, created_at, updated_at, blob_last_modified, "
            "blob_etag, phash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "doc = excluded.doc, profile = excluded.profile, status = excluded.status, "
            "created_at = excluded.created_at, updated_at = excluded.updated_at, "
            "blob_last_modified = excluded.blob_last_modified, blob_etag = excluded.blob_etag, "
            "phash = excluded.phash",
            (
                image_id,
                doc,
                _str_or_none(record.get("profile")),
                _str_or_none(record.get("status")),
                sortable_ts(record.get("createdAt")),
                sortable_ts(record.get("updatedAt")),
                sortable_ts(blob.get("lastModified")) if blob else "",
                str(blob.get("etag") or "") if blob else "",
                None if ph is None else to_signed64(ph),
            ),
        )
        conn.execute("DELETE FROM record_terms WHERE id = ?", (image_id,))
        terms: set[tuple[str, str]] = set()
        terms |= {("tag", t) for t in record.get("tags") or [] if isinstance(t, str)}
        terms |= {("label", t) for t in record.get("labelNames") or [] if isinstance(t, str)}
        for label in record.get("labels") or []:
            if isinstance(label, dict) and isinstance(label.get("name"), str):
                terms.add(("label", label["name"]))
        for dup in record.get("nearDuplicates") or []:
            if isinstance(dup, dict) and isinstance(dup.get("id"), str):
                terms.add(("dup", dup["id"]))
        conn.executemany(
            "INSERT INTO record_terms (id, kind, value) VALUES (?, ?, ?)", [(image_id, k, v) for k, v in terms]
        )
        conn.execute(_DELETE_FTS, (image_id,))
        text = record.get("text")
        if isinstance(text, str) and text:
            conn.execute(
                "INSERT INTO records_fts (rowid, text) SELECT rowid, ? FROM records WHERE id = ?", (text, image_id)
            )


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _load(doc: str) -> JsonDict:
    value: JsonDict = json.loads(doc)
    return value


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _fts_query(text: str) -> str | None:
    """Words of ``text`` as an FTS5 query: every word must occur (the last one as a prefix)."""
    words = _TOKEN.findall(text)
    if not words:
        return None
    quoted = ['"' + w.replace('"', '""') + '"' for w in words]
    quoted[-1] += "*"
    return " AND ".join(quoted)
