"""Label set store over Azure Cosmos DB for NoSQL (Azure mode): ``imagepipe.ports.LabelSetStore``.

One container (``COSMOS_LABELSETS_CONTAINER``, default ``labelsets``, partition key ``/id``, in the records'
database) holds two kinds of documents:

- ``kind: "version"``, id ``v:<profile>:<name>:<version>``: one immutable trained version;
- ``kind: "set"``, id ``s:<profile>:<name>``: the set's ``activeVersion`` and ``lastVersion`` (the last number
  handed out, so a deleted version's number is never reused).

``add_version`` creates the version document with the next free number (``create_item``; a 409 from a
concurrent trainer moves to the next number), then points the set document at it with ``If-Match``
(retrying on 412/409). Listing is a cross-partition query over ``kind``/``profile``. Errors are translated as
the record store does (``translate_cosmos_error``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)

from imagepipe.adapters.cosmos_container import CosmosContainerStore
from imagepipe.adapters.cosmos_records import SYSTEM_PROPERTIES
from imagepipe.errors import ConflictError, InvalidInputError, TransientServiceError
from imagepipe.ports import JsonDict
from imagepipe.timeutil import utc_now

T = TypeVar("T")
_ATTEMPTS = 8


def _strip(doc: JsonDict) -> JsonDict:
    return {k: v for k, v in doc.items() if k not in SYSTEM_PROPERTIES and k not in ("id", "kind")}


def _set_id(profile: str, name: str) -> str:
    return f"s:{profile}:{name}"


def _version_id(profile: str, name: str, version: int) -> str:
    return f"v:{profile}:{name}:{version}"


class CosmosLabelSetStore(CosmosContainerStore):
    """``LabelSetStore`` over one Cosmos DB container (partition key ``/id``)."""

    def _query(self, container: ContainerProxy, sql: str, params: list[dict[str, object]]) -> list[JsonDict]:
        rows = container.query_items(sql, parameters=params, enable_cross_partition_query=True, max_item_count=1000)
        return [dict(r) for r in rows]

    # -- LabelSetStore ------------------------------------------------------------------------------

    def add_version(self, doc: JsonDict) -> JsonDict:
        profile, name = doc.get("profile"), doc.get("name")
        if not isinstance(profile, str) or not isinstance(name, str) or not profile or not name:
            raise InvalidInputError("a label set version needs string 'profile' and 'name'")

        def run(container: ContainerProxy) -> JsonDict:
            pointer = self._read(container, _set_id(profile, name)) or {}
            version = int(pointer.get("lastVersion") or 0) + 1
            stored = {**doc, "createdAt": doc.get("createdAt") or utc_now()}
            for _ in range(_ATTEMPTS):
                stored["version"] = version
                body = {"id": _version_id(profile, name, version), "kind": "version", **stored}
                try:
                    container.create_item(body=body)
                    break
                except CosmosResourceExistsError:
                    version += 1  # a concurrent trainer took this number
            else:
                raise TransientServiceError(f"label set {name}: no free version number", code="records_contention")
            self._point(container, profile, name, lambda p: {**p, "activeVersion": version})
            return dict(stored)

        return self._call(f"store label set {name}", run)

    def _point(
        self, container: ContainerProxy, profile: str, name: str, change: Callable[[JsonDict], JsonDict]
    ) -> None:
        """Apply ``change`` to the set document with If-Match (creating it when missing), keeping lastVersion."""
        set_id = _set_id(profile, name)
        for _ in range(_ATTEMPTS):
            current = self._read(container, set_id)
            base = current or {"id": set_id, "kind": "set", "profile": profile, "name": name, "lastVersion": 0}
            wanted = change({k: v for k, v in base.items() if k not in SYSTEM_PROPERTIES})
            wanted["lastVersion"] = max(int(base.get("lastVersion") or 0), int(wanted.get("activeVersion") or 0))
            try:
                if current is None:
                    container.create_item(body=wanted)
                else:
                    container.replace_item(
                        item=set_id, body=wanted, etag=current["_etag"], match_condition=MatchConditions.IfNotModified
                    )
                return
            except (CosmosResourceExistsError, CosmosAccessConditionFailedError, CosmosResourceNotFoundError):
                continue
        raise TransientServiceError(f"label set {name}: still conflicting", code="records_contention")

    def get_version(self, profile: str, name: str, version: int | None = None) -> JsonDict | None:
        def run(container: ContainerProxy) -> JsonDict | None:
            wanted = version
            if wanted is None:
                pointer = self._read(container, _set_id(profile, name))
                if pointer is None:
                    return None
                wanted = int(pointer["activeVersion"])
            doc = self._read(container, _version_id(profile, name, wanted))
            return None if doc is None else _strip(doc)

        return self._call(f"read label set {name}", run)

    def list_versions(self, profile: str | None = None) -> list[JsonDict]:
        sql = "SELECT * FROM c WHERE c.kind = @kind"
        params: list[dict[str, object]] = [{"name": "@kind", "value": "version"}]
        if profile is not None:
            sql += " AND c.profile = @profile"
            params.append({"name": "@profile", "value": profile})
        rows = self._call("list label sets", lambda c: self._query(c, sql, params))
        docs = [_strip(r) for r in rows]
        return sorted(docs, key=lambda d: (d.get("profile", ""), d.get("name", ""), int(d.get("version", 0))))

    def active_versions(self, profile: str) -> list[JsonDict]:
        def run(container: ContainerProxy) -> list[JsonDict]:
            pointers = self._query(
                container,
                "SELECT * FROM c WHERE c.kind = @kind AND c.profile = @profile",
                [{"name": "@kind", "value": "set"}, {"name": "@profile", "value": profile}],
            )
            ids = [_version_id(profile, str(p["name"]), int(p["activeVersion"])) for p in pointers]
            if not ids:
                return []
            docs = self._query(
                container, "SELECT * FROM c WHERE ARRAY_CONTAINS(@ids, c.id)", [{"name": "@ids", "value": ids}]
            )
            return sorted((_strip(d) for d in docs), key=lambda d: str(d.get("name", "")))

        return self._call(f"read the active label sets of {profile}", run)

    def activate(self, profile: str, name: str, version: int) -> bool:
        def run(container: ContainerProxy) -> bool:
            if self._read(container, _version_id(profile, name, version)) is None:
                return False
            self._point(container, profile, name, lambda p: {**p, "activeVersion": version})
            return True

        return self._call(f"activate label set {name}", run)

    def delete(self, profile: str, name: str, version: int | None = None) -> int:
        def remove(container: ContainerProxy, item_id: str) -> int:
            try:
                container.delete_item(item=item_id, partition_key=item_id)
                return 1
            except CosmosResourceNotFoundError:
                return 0

        def run(container: ContainerProxy) -> int:
            pointer = self._read(container, _set_id(profile, name))
            if version is not None:
                if pointer is not None and int(pointer.get("activeVersion") or 0) == version:
                    raise ConflictError(
                        f"version {version} is the active version of label set '{name}'; activate another version "
                        "first or delete the whole set"
                    )
                return remove(container, _version_id(profile, name, version))
            versions = self._query(
                container,
                "SELECT c.id FROM c WHERE c.kind = @kind AND c.profile = @profile AND c.name = @name",
                [
                    {"name": "@kind", "value": "version"},
                    {"name": "@profile", "value": profile},
                    {"name": "@name", "value": name},
                ],
            )
            count = sum(remove(container, str(v["id"])) for v in versions)
            if pointer is not None:
                remove(container, _set_id(profile, name))
            return count

        return self._call(f"delete label set {name}", run)
