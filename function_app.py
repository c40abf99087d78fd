"""Composition root of the Functions app: registers every blueprint, nothing else.

The same module runs on the Azure Functions host and on the local devhost (``python -m devhost``).
"""

import azure.durable_functions as df

from activities import analyze_image, fetch_image_metadata, persist_record, read_text
from orchestrators import image_pipeline
from triggers import (
    api_deadletters,
    api_images,
    api_labelsets,
    api_runs,
    api_stats,
    dashboard,
    reconcile,
    starter,
    vision_quota,
)

app = df.DFApp()

for module in (
    api_images,
    api_runs,
    api_deadletters,
    api_stats,
    dashboard,
    starter,
    reconcile,
    image_pipeline,
    fetch_image_metadata,
    analyze_image,
    read_text,
    persist_record,
    vision_quota,
    api_labelsets,
):
    app.register_functions(module.bp)
