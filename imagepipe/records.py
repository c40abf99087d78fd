"""Building and updating image records (the document schema in docs/contracts.md).

Pure functions over JSON-native dicts, plus ``merge_into_record`` which applies a patch to the stored
record of one blob version through the record port (never over a newer version).
"""

from __future__ import annotations

import json
import re
import unicodedata
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from imagepipe.domain import BlobFacts, Record
from imagepipe.errors import InvalidInputError
from imagepipe.imagefacts import ImageFacts
from imagepipe.ports import BlobInfo, JsonDict, RecordStore
from imagepipe.timeutil import iso, utc_now

#: Blob metadata keys we write on upload (values percent-encoded: blob metadata is ASCII only).
META_PROFILE = "profile"
META_ORIGINAL_NAME = "originalname"
META_CLIENT = "clientmetadata"


# ---------------------------------------------------------------------------------------------------
# blob metadata: what the API writes, and the only way anything read back from a blob reaches a record
# ---------------------------------------------------------------------------------------------------

#: Azure Blob Storage: all metadata names and values of one blob together may not exceed 8 KiB.
BLOB_METADATA_LIMIT_BYTES = 8 * 1024
MAX_CLIENT_METADATA_KEYS = 16
MAX_CLIENT_METADATA_VALUE = 512
MAX_FILENAME_CHARS = 255
#: stands for a profile value that is not a profile name (e.g. set by hand on a direct upload); no profile has it
INVALID_PROFILE = "?"

_CLIENT_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


def safe_filename(raw: object) -> str | None:
    """The base name of a client-supplied file name, without directories or control characters."""
    if not isinstance(raw, str) or not raw:
        return None
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    return name[:MAX_FILENAME_CHARS] or None


def _client_entry(key: object, value: object) -> str | None:
    """The reason one client metadata entry is refused, or None when it is acceptable."""
    if not isinstance(key, str) or not _CLIENT_KEY.match(key):
        return f"metadata key '{str(key)[:40]}' must start with a letter or _ and use letters, digits and _ (max 64)"
    if not isinstance(value, str | int | float | bool) or len(str(value)) > MAX_CLIENT_METADATA_VALUE:
        return f"metadata value of '{key}' must be a string of at most {MAX_CLIENT_METADATA_VALUE} characters"
    return None


def validate_client_metadata(value: object) -> dict[str, str]:
    """Client metadata from a request: a JSON object of at most 16 short scalar values, or a 400 naming why."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError("metadata must be a JSON object of strings", code="invalid_metadata")
    if len(value) > MAX_CLIENT_METADATA_KEYS:
        raise InvalidInputError(f"metadata has more than {MAX_CLIENT_METADATA_KEYS} keys", code="invalid_metadata")
    for key, item in value.items():
        problem = _client_entry(key, item)
        if problem:
            raise InvalidInputError(problem, code="invalid_metadata")
    return {str(key): str(item) for key, item in value.items()}


def blob_metadata_size(metadata: Mapping[str, str]) -> int:
    """Bytes counted against Azure's per-blob metadata limit: every name plus every value."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())


def encode_blob_metadata(profile: str, original_name: str | None, client: dict[str, str]) -> dict[str, str]:
    """Blob metadata for an upload (ASCII: values percent-encoded); a 400 when it would exceed 8 KiB."""
    meta = {META_PROFILE: profile}
    if original_name:
        meta[META_ORIGINAL_NAME] = urllib.parse.quote(original_name, safe="")
    if client:
        meta[META_CLIENT] = urllib.parse.quote(json.dumps(client, separators=(",", ":")), safe="")
    size = blob_metadata_size(meta)
    if size > BLOB_METADATA_LIMIT_BYTES:
        raise InvalidInputError(
            f"the file name and metadata take {size} bytes as blob metadata (percent-encoded); blob storage allows "
            f"{BLOB_METADATA_LIMIT_BYTES} bytes in total: shorten the values or send fewer keys",
            code="metadata_too_large",
        )
    return meta


def decode_blob_metadata(metadata: Mapping[str, str]) -> tuple[str, str | None, dict[str, str]]:
    """(profile, original name, client metadata) from blob metadata, validated again: a direct (SAS) upload can
    set any ``x-ms-meta-*`` header. Unknown keys are ignored; the file name goes through ``safe_filename``;
    client entries that the API would refuse are dropped (at most 16 kept); a profile value that is not a
    profile name becomes ``INVALID_PROFILE`` (the run then fails naming it). No metadata means ``general``."""
    lowered = {str(k).lower(): str(v) for k, v in metadata.items()}
    raw_profile = lowered.get(META_PROFILE)
    if raw_profile is None or not raw_profile.strip():
        profile = "general"
    else:
        profile = raw_profile.strip() if _PROFILE_NAME.match(raw_profile.strip()) else INVALID_PROFILE
    name = lowered.get(META_ORIGINAL_NAME)
    original = (
        safe_filename(urllib.parse.unquote(name[: 3 * 4 * MAX_FILENAME_CHARS], errors="replace")) if name else None
    )
    client: dict[str, str] = {}
    raw = lowered.get(META_CLIENT)
    if raw:
        try:
            parsed = json.loads(urllib.parse.unquote(raw, errors="replace"))
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            for key, value in parsed.items():
                if len(client) < MAX_CLIENT_METADATA_KEYS and _client_entry(key, value) is None:
                    client[key] = str(value)
    return profile, original, client


@dataclass(frozen=True)
class RecordOrigin:
    """Where a blob version came from: its profile, the client's file name and the client's metadata."""

    profile: str
    original_name: str | None
    client: dict[str, str]


def record_origin(existing: JsonDict | None, metadata: Mapping[str, str]) -> RecordOrigin:
    """The origin of a blob version: for the first blob of an accepted upload (the record is still pending, no
    blob version yet), what the API validated when it accepted the upload; otherwise the blob metadata (a newer
    version, or a blob that arrived another way)."""
    pending = existing is not None and not (existing.get("blob") or {}).get("etag")
    if existing and pending and existing.get("acceptance") and isinstance(existing.get("client"), dict):
        client = existing["client"]
        metadata_of = client.get("metadata") if isinstance(client.get("metadata"), dict) else {}
        return RecordOrigin(
            str(existing.get("profile") or "general"),
            client.get("originalName") if isinstance(client.get("originalName"), str) else None,
            {str(k): str(v) for k, v in metadata_of.items()},
        )
    return RecordOrigin(*decode_blob_metadata(dict(metadata)))


def blob_json(info: BlobInfo) -> JsonDict:
    return BlobFacts(
        container=info.container,
        name=info.name,
        etag=info.etag,
        size=info.size,
        content_type=info.content_type,
        last_modified=iso(info.last_modified),
    ).to_json()


def new_record(
    image_id: str,
    info: BlobInfo,
    facts: ImageFacts | None,
    origin: RecordOrigin,
    *,
    instance_id: str,
    existing: JsonDict | None,
) -> JsonDict:
    """The record of a blob version entering processing (keeps ``createdAt`` and ``acceptance`` of ``existing``)."""
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
    return record_skeleton(
        image_id,
        profile=origin.profile,
        status="processing",
        blob=blob_json(info),
        image=image,
        client={"originalName": origin.original_name, "metadata": origin.client},
        run={"instanceId": instance_id},
        acceptance=(existing or {}).get("acceptance"),
        created_at=(existing or {}).get("createdAt") or now,
        now=now,
    )


def record_skeleton(
    image_id: str,
    *,
    profile: str,
    status: str,
    blob: JsonDict,
    image: JsonDict | None,
    client: JsonDict,
    run: JsonDict,
    acceptance: JsonDict | None,
    created_at: str,
    now: str,
) -> JsonDict:
    """Every field of a record (``imagepipe.domain.Record``, docs/contracts.md) with no analysis yet, validated."""
    return Record.model_validate(
        {
            "id": image_id,
            "profile": profile,
            "status": status,
            "blob": blob,
            "image": image,
            "client": client,
            "run": run,
            "acceptance": acceptance,
            "createdAt": created_at,
            "updatedAt": now,
        }
    ).to_json()


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
