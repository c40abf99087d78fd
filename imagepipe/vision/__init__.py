"""Local, offline image analysis (``VISION_PROVIDER=local``): pretrained models behind ``LocalAnalyzer``.

``LocalAnalyzer`` implements ``imagepipe.ports.VisionAnalyzer`` and answers in the Azure AI Vision 4.0
``ImageAnalysisResult`` JSON shape; ``phash_distance`` compares two perceptual hashes. Model files are
prepared once by ``python -m imagepipe.vision.prepare`` (``make models``).
"""

from __future__ import annotations

from imagepipe.phash import phash_distance
from imagepipe.vision.analyzer import MODEL_VERSION, LocalAnalyzer

__all__ = ["MODEL_VERSION", "LocalAnalyzer", "phash_distance"]
