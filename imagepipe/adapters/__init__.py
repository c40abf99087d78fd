"""Adapters: one implementation of each port per mode (Azure SDKs in Azure, SQLite/local code locally).

``azure_blob`` (Blob Storage / Azurite), ``sqlite_records`` and ``cosmos_records`` (``RecordStore``),
``azure_vision`` (``VisionAnalyzer`` over Azure AI Vision 4.0); ``records_common`` holds what both record
stores share. The composition root picks among them from settings.
"""
