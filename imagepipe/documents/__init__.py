"""Structured fields of claim documents (claim and policy numbers, dates, amounts, registrations, parties).

``extract_fields`` is the local, layout-aware extractor over an OCR ``readResult``; ``LocalFieldExtractor``
serves it through the ``imagepipe.ports.DocumentFieldExtractor`` port. The Azure AI Document Intelligence
adapter is ``imagepipe.adapters.azure_documents``. Schema and mapping: docs/document-fields.md.
"""

from __future__ import annotations

from imagepipe.documents.extract import MODEL_VERSION, extract_fields
from imagepipe.documents.local import LocalFieldExtractor

__all__ = ["MODEL_VERSION", "LocalFieldExtractor", "extract_fields"]
