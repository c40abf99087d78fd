"""Building and updating image records (the document schema in docs/contracts.md).

Pure functions over JSON-native dicts, plus ``merge_into_record`` which applies a patch to the stored
record of one blob version through the record port (never over a newer version).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from imagepipe.imagefacts import ImageFacts
from imagepipe.ports import BlobInfo, JsonDict, RecordStore

SCHEMA_VERSION = 1

#: Blob metadata keys we write on upload (values percent-encoded: blob metadata is ASCII only).
META_PROFILE = "profile"
META_ORIGINAL_NAME = "originalname"
META_CLIENT = "clientmetadata"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_blob_metadata(profile: str, original_name: str | None, client: dict[str, str]) -> dict[str, str]:
    meta = {META_PROFILE: profile}
    if original_name:
        meta[META_ORIGINAL_NAME] = urllib.parse.quote(original_name, safe="")
    if client:
        meta[META_CLIENT] = urllib.parse.quote(json.dumps(client, separators=(",", ":")), safe="")
    return meta


def decode_blob_metadata(metadata: dict[str, str]) -> tuple[str, str | None, dict[str, str]]:
    """(profile, original name, client metadata) from blob metadata; tolerant of hand-made blobs."""
    lowered = {k.lower(): v for k, v in metadata.items()}
    profile = lowered.get(META_PROFILE) or "general"
    name = lowered.get(META_ORIGINAL_NAME)
    original = urllib.parse.unquote(name) if name else None
    client: dict[str, str] = {}
    raw = lowered.get(META_CLIENT)
    if raw:
        try:
            parsed = json.loads(urllib.parse.unquote(raw))
            if isinstance(parsed, dict):
                client = {str(k): str(v) for k, v in parsed.items()}
        except ValueError:
            client = {}
    return profile, original, client


def record_origin(existing: JsonDict | None, metadata: Mapping[str, str]) -> tuple[str, str | None, dict[str, str]]:
    """(profile, original name, client metadata) of a blob version: for the first blob of an accepted upload
    (the record is still pending, no blob version yet), what the API validated when it accepted the upload;
    otherwise the blob metadata (a newer version, or a blob that arrived another way)."""
    pending = existing is not None and not (existing.get("blob") or {}).get("etag")
    if existing and pending and existing.get("acceptance") and isinstance(existing.get("client"), dict):
        client = existing["client"]
        metadata_of = client.get("metadata") if isinstance(client.get("metadata"), dict) else {}
        return (
            str(existing.get("profile") or "general"),
            client.get("originalName") if isinstance(client.get("originalName"), str) else None,
            {str(k): str(v) for k, v in metadata_of.items()},
        )
    return decode_blob_metadata(dict(metadata))


def blob_json(info: BlobInfo) -> JsonDict:
    return {
        "container": info.container,
        "name": info.name,
        "etag": info.etag,
        "size": info.size,
        "contentType": info.content_type,
        "lastModified": iso(info.last_modified),
    }


def new_record(
    image_id: str,
    info: BlobInfo,
    facts: ImageFacts | None,
    profile: str,
    original_name: str | None,
    client: dict[str, str],
    instance_id: str,
    existing: JsonDict | None,
) -> JsonDict:
    """The record of a blob version entering processing (keeps ``createdAt`` of an earlier version)."""
    now = utc_now()
    image: JsonDict | None = None
    if facts is not None:
        image = {
            "width": facts.width,
            "height": facts.height,
            "format": facts.format,
            "sha256": facts.sha256,
            "phash": facts.phash,
            "exif": facts.exif,
        }
    return {
        "id": image_id,
        "schemaVersion": SCHEMA_VERSION,
        "profile": profile,
        "status": "processing",
        "blob": blob_json(info),
        "image": image,
        "client": {"originalName": original_name, "metadata": client},
        "analysis": None,
        "readResult": None,
        "text": "",
        "tags": [],
        "labels": [],
        "labelNames": [],
        "nearDuplicates": [],
        "run": {"instanceId": instance_id},
        "error": None,
        "acceptance": (existing or {}).get("acceptance"),
        "createdAt": (existing or {}).get("createdAt") or now,
        "updatedAt": now,
    }


def merge_into_record(store: RecordStore, image_id: str, etag: str, patch: dict[str, Any]) -> JsonDict | None:
    """Apply ``patch`` to the record of blob version ``etag``; None when that version is no longer current."""
    record = store.get(image_id)
    if record is None or (record.get("blob") or {}).get("etag") != etag:
        return None
    merged = {**record, **patch, "updatedAt": utc_now()}
    if "run" in patch:
        merged["run"] = {**(record.get("run") or {}), **patch["run"]}
    return merged if store.upsert_if_not_older(merged) else None


def tag_entries(analysis: Mapping[str, Any]) -> Iterator[tuple[str, float, str]]:
    """(lower-case name, confidence, "tag" | "object") of every tag and detected object of an analysis."""
    for tag in (analysis.get("tagsResult") or {}).get("values", ()):
        yield str(tag.get("name", "")).lower(), float(tag.get("confidence", 0.0)), "tag"
    for obj in (analysis.get("objectsResult") or {}).get("values", ()):
        for tag in obj.get("tags", ()):
            yield str(tag.get("name", "")).lower(), float(tag.get("confidence", 0.0)), "object"


def tag_names(analysis: JsonDict) -> list[str]:
    """Lower-case tag and object names of an analysis, for search."""
    return sorted({name for name, _, _ in tag_entries(analysis) if name})


def read_text_of(read_result: JsonDict | None) -> str:
    """All OCR lines of a ``readResult``, one per line."""
    if not read_result:
        return ""
    return "\n".join(
        str(line.get("text", "")) for block in read_result.get("blocks", []) for line in block.get("lines", [])
    )
