"""Stores a sample image as an upload would, and returns the pipeline step input for its blob version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imagepipe.ids import blob_name, instance_id, new_image_id
from imagepipe.ports import BlobStore
from imagepipe.records import encode_blob_metadata

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def store_sample(
    blobs: BlobStore, sample: str, profile: str, original_name: str | None = None, client: dict[str, str] | None = None
) -> dict[str, Any]:
    image_id = new_image_id()
    ext = sample.rsplit(".", 1)[1]
    info = blobs.put(
        blob_name(image_id, ext),
        (SAMPLES / sample).read_bytes(),
        content_type=f"image/{'jpeg' if ext == 'jpg' else ext}",
        metadata=encode_blob_metadata(profile, original_name or sample, client or {}),
    )
    return {
        "imageId": image_id,
        "blobName": info.name,
        "etag": info.etag,
        "instanceId": instance_id(image_id, info.etag),
    }
