"""Label set store over SQLite (local mode): ``imagepipe.ports.LabelSetStore`` in the records' database file.

Two tables next to the records: ``labelset_versions`` (one immutable JSON document per version, keyed by
profile, name and version) and ``labelsets`` (one row per set: the active version and the last number
handed out, so a deleted version's number is never reused). Connections come from a small bounded pool
(``imagepipe.adapters.sqlite_pool``): every write runs in ``BEGIN IMMEDIATE``; reads (analysis reads the active
versions of one profile for every image) take no write lock.
"""

from __future__ import annotations

import json

from imagepipe.adapters.sqlite_pool import PooledSqlite
from imagepipe.errors import ConflictError, InvalidInputError
from imagepipe.ports import JsonDict
from imagepipe.timeutil import utc_now

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS labelsets (
        profile TEXT NOT NULL,
        name TEXT NOT NULL,
        active_version INTEGER NOT NULL,
        last_version INTEGER NOT NULL,
        PRIMARY KEY (profile, name)
    )""",
    """CREATE TABLE IF NOT EXISTS labelset_versions (
        profile TEXT NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (profile, name, version)
    )""",
)


def _key(doc: JsonDict) -> tuple[str, str]:
    profile, name = doc.get("profile"), doc.get("name")
    if not isinstance(profile, str) or not isinstance(name, str) or not profile or not name:
        raise InvalidInputError("a label set version needs string 'profile' and 'name'")
    return profile, name


class SqliteLabelSetStore(PooledSqlite):
    """``LabelSetStore`` over a SQLite file (created on first use)."""

    kind = "label set store"

    def __init__(self, path: str, *, max_connections: int = 2) -> None:
        super().__init__(path, max_connections=max_connections)
        with self._tx() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    def add_version(self, doc: JsonDict) -> JsonDict:
        profile, name = _key(doc)
        with self._tx() as conn:
            row = conn.execute(
                "SELECT last_version FROM labelsets WHERE profile = ? AND name = ?", (profile, name)
            ).fetchone()
            version = (row[0] if row else 0) + 1
            stored = {**doc, "version": version, "createdAt": doc.get("createdAt") or utc_now()}
            conn.execute(
                "INSERT INTO labelset_versions (profile, name, version, doc) VALUES (?, ?, ?, ?)",
                (profile, name, version, json.dumps(stored, separators=(",", ":"))),
            )
            conn.execute(
                "INSERT INTO labelsets (profile, name, active_version, last_version) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (profile, name) DO UPDATE SET active_version = excluded.active_version, "
                "last_version = excluded.last_version",
                (profile, name, version, version),
            )
        return stored

    def get_version(self, profile: str, name: str, version: int | None = None) -> JsonDict | None:
        with self._connection() as conn:
            if version is None:
                row = conn.execute(
                    "SELECT v.doc FROM labelset_versions v JOIN labelsets s ON s.profile = v.profile "
                    "AND s.name = v.name AND s.active_version = v.version WHERE v.profile = ? AND v.name = ?",
                    (profile, name),
                ).fetchone()
            else:
                row = conn.execute(
                    "SELECT doc FROM labelset_versions WHERE profile = ? AND name = ? AND version = ?",
                    (profile, name, version),
                ).fetchone()
        return None if row is None else _load(row[0])

    def list_versions(self, profile: str | None = None) -> list[JsonDict]:
        sql = "SELECT doc FROM labelset_versions"
        args: tuple[str, ...] = ()
        if profile is not None:
            sql += " WHERE profile = ?"
            args = (profile,)
        with self._connection() as conn:
            rows = conn.execute(sql + " ORDER BY profile, name, version", args).fetchall()
        return [_load(r[0]) for r in rows]

    def active_versions(self, profile: str) -> list[JsonDict]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT v.doc FROM labelset_versions v JOIN labelsets s ON s.profile = v.profile "
                "AND s.name = v.name AND s.active_version = v.version WHERE v.profile = ? ORDER BY v.name",
                (profile,),
            ).fetchall()
        return [_load(r[0]) for r in rows]

    def activate(self, profile: str, name: str, version: int) -> bool:
        with self._tx() as conn:
            exists = conn.execute(
                "SELECT 1 FROM labelset_versions WHERE profile = ? AND name = ? AND version = ?",
                (profile, name, version),
            ).fetchone()
            if exists is None:
                return False
            conn.execute(
                "UPDATE labelsets SET active_version = ? WHERE profile = ? AND name = ?", (version, profile, name)
            )
        return True

    def delete(self, profile: str, name: str, version: int | None = None) -> int:
        with self._tx() as conn:
            if version is None:
                count = conn.execute(
                    "DELETE FROM labelset_versions WHERE profile = ? AND name = ?", (profile, name)
                ).rowcount
                conn.execute("DELETE FROM labelsets WHERE profile = ? AND name = ?", (profile, name))
                return int(count)
            row = conn.execute(
                "SELECT active_version FROM labelsets WHERE profile = ? AND name = ?", (profile, name)
            ).fetchone()
            if row is not None and row[0] == version:
                raise ConflictError(
                    f"version {version} is the active version of label set '{name}'; activate another version "
                    "first or delete the whole set"
                )
            count = conn.execute(
                "DELETE FROM labelset_versions WHERE profile = ? AND name = ? AND version = ?",
                (profile, name, version),
            ).rowcount
            return int(count)


def _load(doc: str) -> JsonDict:
    value: JsonDict = json.loads(doc)
    return value
