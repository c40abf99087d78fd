"""``ImageEmbedder`` over the shipped EfficientNet-Lite0 classifier: its pooled 1280 features, L2-normalised.

The features come from the same onnxruntime session as the classifier's logits (the pooled tensor is exposed
as a second graph output in memory, ``imagepipe.vision.onnx_graph``), so the model is loaded once per
process whether the local analyzer, the custom labels, or both use it. The settings select this adapter in
every mode (``CUSTOM_LABELS_EMBEDDER=onnx``): with Azure AI Vision as the analyzer, the Function App still
runs it for custom labels.
"""

from __future__ import annotations

from pathlib import Path

from imagepipe.vision.classifier import FEATURE_DIM, ImageNetClassifier
from imagepipe.vision.image import decode
from imagepipe.vision.runtime import APP_ROOT, DEFAULT_MODEL_DIR, shared

MODEL_ID = f"efficientnet-lite0/avgpool-{FEATURE_DIM}"


class OnnxImageEmbedder:
    """``imagepipe.ports.ImageEmbedder``: centre-cropped 224 px input, the classifier's pooled features."""

    model = MODEL_ID

    def __init__(self, model_dir: str | Path | None = None) -> None:
        self.classifier = shared(ImageNetClassifier, resolve_model_dir(model_dir))

    def embed(self, image: bytes) -> list[float]:
        vector: list[float] = self.classifier.embedding(decode(image).rgb).tolist()
        return vector


def resolve_model_dir(model_dir: str | Path | None) -> Path:
    """``CUSTOM_LABELS_MODEL_DIR``: unset means ``.models``; a relative folder is the app root's (in Azure, the
    deployed package's: ``make package`` copies the model to ``imagepipe/vision/models``)."""
    if not model_dir:
        return DEFAULT_MODEL_DIR
    path = Path(model_dir)
    return path if path.is_absolute() else APP_ROOT / path
