"""Model plumbing shared by the local analyzer: where model files live, ONNX Runtime sessions, lazy loading.

Every model is a ``LazyModel``: nothing is loaded at import time; the first ``get()`` loads it under a
lock (once per process, shared by all analyzers using the same model directory), and any failure to find
or load the files becomes ``ModelUnavailableError`` naming the fix. Models that are not safe to call from
several threads at once (MediaPipe graphs) also hold ``call_lock`` while used; ONNX Runtime sessions need none.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from imagepipe.errors import ModelUnavailableError

T = TypeVar("T")

#: ``.models/`` at the repository root (where ``python -m imagepipe.vision.prepare`` writes).
#: The folder of function_app.py: the checkout locally, the deployed package in Azure.
APP_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_DIR = APP_ROOT / ".models"


def ort_threads() -> int:
    """onnxruntime intra-op threads per session: ``IMAGEPIPE_ORT_THREADS`` (1 to 2; default 1, as the host
    runs several activities at once on few cores). Read when a model loads, not at import."""
    raw = os.environ.get("IMAGEPIPE_ORT_THREADS", "1")
    try:
        return max(1, min(2, int(raw)))
    except ValueError:
        return 1


def analysis_slots() -> int:
    """How many analyses (``LocalAnalyzer.analyze`` / ``read_text`` calls) run at once in this process:
    ``IMAGEPIPE_ANALYSIS_CONCURRENCY``, by default the cores this process may use divided by ``ort_threads()``
    (at least 1). The models are CPU-bound, so more at once than cores makes each one slower and holds more
    memory (measured on 2 cores: OCR used 866 ms of CPU per document one at a time, ~1,000 ms four at a time);
    callers beyond the limit wait their turn. Read on each call."""
    raw = os.environ.get("IMAGEPIPE_ANALYSIS_CONCURRENCY", "")
    if raw.strip().isdigit() and int(raw) > 0:
        return int(raw)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // ort_threads())


_SLOTS: dict[int, threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


@contextmanager
def analysis_slot() -> Iterator[None]:
    """Hold one of the process's ``analysis_slots()`` for the duration of the block."""
    limit = analysis_slots()
    with _SLOTS_LOCK:
        slots = _SLOTS.setdefault(limit, threading.BoundedSemaphore(limit))
    with slots:
        yield


def _libc_trim() -> Any:
    """glibc's ``malloc_trim``, or None elsewhere (musl, macOS)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _libc_trim()


def release_memory() -> None:
    """Hand the allocator's free pages back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    A run's tensors (several MB each, in every thread's malloc arena) are freed when it ends, but glibc keeps
    freed pages for reuse, so a host with a few concurrent analyses would hold each arena's high-water mark
    for good; trimming after each analysis keeps the host near its models' own size between images."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


@dataclass(frozen=True)
class ModelInfo:
    """What the result's ``imagepipe.models`` lists for each model used."""

    name: str
    version: str
    licence: str
    source: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "licence": self.licence, "source": self.source}


def ort_session(path: Path, *, threads: int | None = None) -> Any:
    """A CPU onnxruntime session with a fixed, small thread count and no memory arena.

    The arena would keep each session's peak working memory (times the number of concurrent callers) for
    the life of the process; without it, a run's tensors go back to the allocator when the run ends."""
    if not path.is_file():
        raise ModelUnavailableError(f"model file {path} is missing; run `make models`")
    return ort_session_from(str(path), threads=threads)


def ort_session_from(model: str | bytes, *, threads: int | None = None) -> Any:
    """``ort_session`` for a model path or a serialized model held in memory (e.g. an edited graph)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or ort_threads()
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class LazyModel(ABC, Generic[T]):
    """Loads its model on first use, once, under a lock; load failures raise ``ModelUnavailableError``."""

    info: ModelInfo

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self._lock = threading.Lock()
        self.call_lock = threading.Lock()
        self._model: T | None = None

    @abstractmethod
    def _load(self) -> T: ...

    def get(self) -> T:
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                try:
                    self._model = self._load()
                except ModelUnavailableError:
                    raise
                except Exception as exc:  # any import/file/format failure of a third-party loader
                    raise ModelUnavailableError(
                        f"{self.info.name} failed to load ({type(exc).__name__}: {exc}); "
                        "check the local extra (pyproject.toml) / requirements-nodeps.txt and run `make models`"
                    ) from exc
            return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None


_REGISTRY: dict[tuple[str, Path], LazyModel[Any]] = {}
_REGISTRY_LOCK = threading.Lock()

M = TypeVar("M", bound=LazyModel[Any])


def shared(cls: type[M], model_dir: Path) -> M:
    """The process-wide instance of model class ``cls`` for ``model_dir``."""
    key = (cls.__qualname__, model_dir.resolve())
    with _REGISTRY_LOCK:
        model = _REGISTRY.get(key)
        if model is None:
            model = cls(model_dir)
            _REGISTRY[key] = model
    assert isinstance(model, cls)
    return model
