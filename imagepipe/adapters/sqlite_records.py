"""Record store over one SQLite file (local mode): a JSON document per image plus indexed columns.

Layout: ``records`` holds the document and the columns the API filters and sorts on (profile, status,
createdAt, updatedAt, blob lastModified/ETag, the 64-bit pHash as a signed integer); ``record_terms`` holds
one row per tag and label name; ``record_phash_keys`` holds the 66 pHash keys of each
record (multi-index hashing over two 32-bit halves, for the near-duplicate lookup, see docs/records.md),
pointing at the record's rowid; ``records_fts`` (FTS5) indexes the OCR ``text`` by word, also by rowid.
The database runs in WAL mode.

Connections come from a small bounded pool (``imagepipe.adapters.sqlite_pool``; ``max_connections``, default
4), so the number of open files stays fixed however many threads call the store. Writes that compare versions
run inside ``BEGIN IMMEDIATE`` so racing writers serialize and the newest blob version wins. ``close()`` closes
every pooled connection.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from imagepipe.adapters.records_common import (
    HALF_BITS,
    WRITE_MASKS,
    JsonDict,
    band_int,
    clamp_limit,
    decode_token,
    encode_token,
    filter_bounds,
    is_older_version,
    normalize_timestamps,
    phash_key_ints,
    probe_key_ints,
    project,
    record_phash,
    search_words,
    sortable_ts,
    to_signed64,
)
from imagepipe.adapters.sqlite_pool import PooledSqlite
from imagepipe.errors import InvalidInputError
from imagepipe.phash import hamming, phash_to_int
from imagepipe.ports import SearchPage, SearchQuery

#: ``PRAGMA user_version`` of the current layout; older files are migrated when a store opens them.
SCHEMA_VERSION = 3

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
CREATE TABLE IF NOT EXISTS record_phash_keys (
    key INTEGER NOT NULL,
    rid INTEGER NOT NULL,
    PRIMARY KEY (key, rid)
) WITHOUT ROWID;
"""
# Words are runs of letters and digits, case-folded, diacritics kept: the same words as ``search_words``.
_FTS = "CREATE VIRTUAL TABLE records_fts USING fts5 (text, tokenize = 'unicode61 remove_diacritics 0')"

# The 66 pHash keys of many records in one statement, in key order: ?1 = [[rowid, h0 key], [rowid, h1 key], ...]
# (``band_int`` of each exact half), ?2 = the write-side XOR masks; a XOR m = (a | m) - (a & m).
_INSERT_KEYS = """
INSERT OR IGNORE INTO record_phash_keys (key, rid)
SELECT (h.k | m.value) - (h.k & m.value), h.rid
FROM (SELECT json_extract(value, '$[0]') AS rid, json_extract(value, '$[1]') AS k FROM json_each(?1)) AS h,
     json_each(?2) AS m
ORDER BY 1
"""

# The FTS rows share the rowid of their record (an upsert keeps the rowid).
_DELETE_FTS = "DELETE FROM records_fts WHERE rowid = (SELECT rowid FROM records WHERE id = ?)"


def _hamming_udf(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else hamming(a, b)


class SqliteRecordStore(PooledSqlite):
    """``imagepipe.ports.RecordStore`` over a SQLite file (created on first use, parent folders included)."""

    kind = "record store"

    def __init__(self, path: str, *, max_connections: int = 4) -> None:
        super().__init__(path, max_connections=max_connections)
        with self._connection() as conn:
            self._migrate(conn)

    def _setup_connection(self, conn: sqlite3.Connection) -> None:
        conn.create_function("hamming", 2, _hamming_udf, deterministic=True)

    # -- schema -------------------------------------------------------------------------------------

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Create the tables, or bring a file from an older layout up to ``SCHEMA_VERSION``.

        Version 2 added pHash bands and rebuilt ``records_fts`` with a tokenizer that keeps diacritics (the
        words ``search_words`` produces). Version 3 replaced the four 16-bit bands (``record_phash_bands``)
        with the 66 half keys of ``record_phash_keys`` (filled here from the stored pHashes).
        """
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for statement in filter(None, (part.strip() for part in _SCHEMA.split(";"))):
                conn.execute(statement)
            if version < SCHEMA_VERSION:
                conn.execute("DROP TABLE IF EXISTS record_phash_bands")
                conn.execute("DELETE FROM record_phash_keys")
                if version < 2:
                    conn.execute("DROP TABLE IF EXISTS records_fts")
                    conn.execute(_FTS)
                    for rowid, doc in conn.execute("SELECT rowid, doc FROM records").fetchall():
                        self._write_text(conn, rowid, _load(doc))
                rows = conn.execute("SELECT rowid, phash FROM records WHERE phash IS NOT NULL").fetchall()
                for start in range(0, len(rows), 1000):
                    self._insert_keys(conn, rows[start : start + 1000])
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- RecordStore --------------------------------------------------------------------------------

    def get(self, image_id: str) -> JsonDict | None:
        with self._connection() as conn:
            row = conn.execute("SELECT doc FROM records WHERE id = ?", (image_id,)).fetchone()
        return None if row is None else _load(row[0])

    def upsert_if_not_older(self, record: JsonDict) -> bool:
        image_id = record.get("id")
        if not isinstance(image_id, str) or not image_id:
            raise InvalidInputError("a record needs a string 'id'")
        record = normalize_timestamps(record)
        with self._tx() as conn:
            row = conn.execute("SELECT doc FROM records WHERE id = ?", (image_id,)).fetchone()
            if row is not None and is_older_version(record, _load(row[0])):
                return False
            self._write(conn, record)
        return True

    def bulk_write(self, records: Iterable[JsonDict], *, batch: int = 1000) -> int:
        """Write many records unconditionally (no version check), ``batch`` per transaction: loading and tests."""
        count = 0
        pending: list[JsonDict] = []
        for record in records:
            pending.append(normalize_timestamps(record))
            if len(pending) >= batch:
                count += self._write_many(pending)
                pending = []
        return count + (self._write_many(pending) if pending else 0)

    def _write_many(self, records: list[JsonDict]) -> int:
        # The pHash keys of the batch go in at the end, sorted, in one statement: 66 random keys per record
        # inserted one record at a time touch pages all over the key index; sorted, the batch walks it once.
        keys: list[tuple[int, int]] = []
        seen: set[str] = set()
        with self._tx() as conn:
            for record in records:
                if record["id"] in seen:  # a repeated id deletes its own pending keys: store them first
                    self._insert_keys(conn, keys)
                    keys, seen = [], set()
                seen.add(record["id"])
                self._write(conn, record, keys)
            self._insert_keys(conn, keys)
        return len(records)

    def delete(self, image_id: str) -> bool:
        with self._tx() as conn:
            row = conn.execute("SELECT rowid, phash FROM records WHERE id = ?", (image_id,)).fetchone()
            if row is None:
                return False
            self._delete_keys(conn, row[0], row[1])
            conn.execute(_DELETE_FTS, (image_id,))
            conn.execute("DELETE FROM records WHERE id = ?", (image_id,))
            return True

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
        lower, upper = filter_bounds(query.created_from, query.created_to)
        if lower is not None:
            where.append("r.created_at >= ?")
            args.append(sortable_ts(lower))
        if upper is not None:
            where.append("r.created_at <= ?")
            args.append(sortable_ts(upper))
        for kind, value in (("tag", query.tag), ("label", query.label), ("custom", query.custom_label)):
            if value is not None:
                where.append("EXISTS (SELECT 1 FROM record_terms t WHERE t.kind = ? AND t.value = ? AND t.id = r.id)")
                args += [kind, value]
        if query.text is not None:
            words = search_words(query.text)
            if not words:
                return SearchPage(items=[], continuation=None)
            where.append("r.rowid IN (SELECT rowid FROM records_fts WHERE records_fts MATCH ?)")
            args.append(" ".join('"' + w.replace('"', '""') + '"' for w in words))
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
        with self._connection() as conn:
            rows = conn.execute(sql, [*args, limit + 1]).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        token = encode_token({"c": rows[-1][1], "i": rows[-1][2]}) if more and rows else None
        return SearchPage(items=[_load(r[0]) for r in rows], continuation=token)

    def near_duplicates(self, phash: str, *, max_distance: int, exclude_id: str, limit: int = 20) -> list[JsonDict]:
        """Records within ``max_distance`` bits, nearest first (then by id), each with its ``distance``.

        A lookup probes the key index (``probe_key_ints``: 1,058 keys at the default distance 6) and verifies
        each candidate's real distance; beyond ``MAX_PROBES`` keys (distance >= 10) it scans every pHash.
        """
        target = phash_to_int(phash)
        if target is None:
            raise InvalidInputError(f"'{phash[:32]}' is not a 64-bit perceptual hash (16 hex digits)")
        with self._connection() as conn:
            candidates = self._candidates(conn, target, max_distance)
            hits = sorted(
                (d, image_id)
                for image_id, value in candidates
                if image_id != exclude_id and (d := hamming(value, target)) <= max_distance
            )[: max(1, limit)]
            docs = dict(
                conn.execute(
                    "SELECT id, doc FROM records WHERE id IN (SELECT value FROM json_each(?))",
                    (json.dumps([image_id for _, image_id in hits]),),
                ).fetchall()
            )
        return [_load(docs[image_id]) | {"distance": d} for d, image_id in hits if image_id in docs]

    def iter_all(self, *, fields: Sequence[str] | None = None) -> Iterator[JsonDict]:
        keep = tuple(fields) if fields is not None else None
        last = ""
        while True:
            with self._connection() as conn:  # one batch per borrow: a paused generator holds no connection
                rows = conn.execute(
                    "SELECT id, doc FROM records WHERE id > ? ORDER BY id LIMIT 500", (last,)
                ).fetchall()
            if not rows:
                return
            for _image_id, doc in rows:
                yield project(_load(doc), keep)
            last = rows[-1][0]

    # -- internals ----------------------------------------------------------------------------------

    @staticmethod
    def _candidates(conn: sqlite3.Connection, target: int, max_distance: int) -> list[tuple[str, int]]:
        """``(id, phash)`` of every record sharing a probe key with ``target`` (or of every record with a
        pHash within ``max_distance``, by a scan, when the probe keys would exceed ``MAX_PROBES``)."""
        keys = probe_key_ints(target, max_distance)
        if keys is None:
            return conn.execute(
                "SELECT id, phash FROM records WHERE phash IS NOT NULL AND hamming(phash, ?) <= ?",
                (to_signed64(target), max_distance),
            ).fetchall()
        return conn.execute(
            "SELECT id, phash FROM records WHERE rowid IN (SELECT rid FROM record_phash_keys "
            "WHERE key IN (SELECT value FROM json_each(?)))",
            (json.dumps(keys),),
        ).fetchall()

    @classmethod
    def _write(cls, conn: sqlite3.Connection, record: JsonDict, keys: list[tuple[int, int]] | None = None) -> None:
        """Insert or replace one normalised record with its terms, pHash keys and text (in ``conn``'s
        transaction). With ``keys``, ``(rowid, phash)`` of a record whose keys are due is appended there for
        the caller to insert (``_insert_keys``)."""
        image_id = record["id"]
        blob = record.get("blob") if isinstance(record.get("blob"), dict) else {}
        ph = phash_to_int(record_phash(record))
        stored_ph = None if ph is None else to_signed64(ph)
        old = conn.execute("SELECT rowid, phash FROM records WHERE id = ?", (image_id,)).fetchone()
        if old is not None and old[1] != stored_ph:
            cls._delete_keys(conn, old[0], old[1])
        rowid = conn.execute(
            "INSERT INTO records (id, doc, profile, status, created_at, updated_at, blob_last_modified, "
            "blob_etag, phash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "doc = excluded.doc, profile = excluded.profile, status = excluded.status, "
            "created_at = excluded.created_at, updated_at = excluded.updated_at, "
            "blob_last_modified = excluded.blob_last_modified, blob_etag = excluded.blob_etag, "
            "phash = excluded.phash RETURNING rowid",
            (
                image_id,
                json.dumps(record, separators=(",", ":"), ensure_ascii=False),
                _str_or_none(record.get("profile")),
                _str_or_none(record.get("status")),
                sortable_ts(record.get("createdAt")),
                sortable_ts(record.get("updatedAt")),
                sortable_ts(blob.get("lastModified")) if blob else "",
                str(blob.get("etag") or "") if blob else "",
                stored_ph,
            ),
        ).fetchone()[0]
        conn.execute("DELETE FROM record_terms WHERE id = ?", (image_id,))
        terms: set[tuple[str, str]] = set()
        terms |= {("tag", t) for t in record.get("tags") or [] if isinstance(t, str)}
        terms |= {("label", t) for t in record.get("labelNames") or [] if isinstance(t, str)}
        for label in record.get("labels") or []:
            if isinstance(label, dict) and isinstance(label.get("name"), str):
                terms.add(("label", label["name"]))
        terms |= {("custom", t) for t in record.get("customLabelNames") or [] if isinstance(t, str)}
        conn.executemany(
            "INSERT INTO record_terms (id, kind, value) VALUES (?, ?, ?)", [(image_id, k, v) for k, v in terms]
        )
        if stored_ph is not None and (old is None or old[1] != stored_ph):
            if keys is None:
                cls._insert_keys(conn, [(rowid, stored_ph)])
            else:
                keys.append((rowid, stored_ph))
        conn.execute("DELETE FROM records_fts WHERE rowid = ?", (rowid,))
        cls._write_text(conn, rowid, record)

    @staticmethod
    def _insert_keys(conn: sqlite3.Connection, records: list[tuple[int, int]]) -> None:
        """Store the pHash keys of ``(rowid, phash)`` records (``phash`` signed or unsigned), in key order."""
        if not records:
            return
        halves: list[list[int]] = []
        for rowid, phash in records:
            value = phash & ((1 << 64) - 1)
            halves += ([rowid, band_int(0, value >> HALF_BITS)], [rowid, band_int(1, value & ((1 << HALF_BITS) - 1))])
        conn.execute(_INSERT_KEYS, (json.dumps(halves), json.dumps(WRITE_MASKS)))

    @staticmethod
    def _delete_keys(conn: sqlite3.Connection, rowid: int, phash: int | None) -> None:
        """Remove the keys stored for the record at ``rowid`` with pHash ``phash`` (no-op for None)."""
        if phash is not None:
            conn.executemany(
                "DELETE FROM record_phash_keys WHERE key = ? AND rid = ?",
                [(key, rowid) for key in phash_key_ints(phash)],
            )

    @staticmethod
    def _write_text(conn: sqlite3.Connection, rowid: int, record: JsonDict) -> None:
        text = record.get("text")
        if isinstance(text, str) and text:
            conn.execute("INSERT INTO records_fts (rowid, text) VALUES (?, ?)", (rowid, text))


def _load(doc: str) -> JsonDict:
    value: JsonDict = json.loads(doc)
    return value


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
