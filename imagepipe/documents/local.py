"""The local ``DocumentFieldExtractor``: the layout-aware extractor over the OCR result the pipeline already has."""

from __future__ import annotations

from imagepipe.documents.extract import PROVIDER, extract_fields
from imagepipe.ports import FieldRequest, JsonDict


class LocalFieldExtractor:
    """Reads fields from the run's ``readResult``; the image bytes are not needed (no second OCR)."""

    provider = PROVIDER

    def extract(self, image: bytes, read_result: JsonDict, request: FieldRequest) -> JsonDict:
        return extract_fields(read_result, request.locale)
