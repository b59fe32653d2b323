"""What the evaluations use of the engine, named narrowly (``MemoryLab`` provides both).

Why: a recall benchmark needs the dataset's turn index and its disk-cached
embeddings, an answer benchmark needs a model; neither needs the lab's
stores, workers or settings. Typing them by what they use keeps the lab out
of their imports and lets a benchmark be handed anything that has these.
"""

from __future__ import annotations

from typing import Protocol

from ..backends.embedding_cache import EmbeddingCache
from ..llm import LLM
from ..stores.turn_store import TurnStore


class DatasetIndex(Protocol):
    """A data set's turns indexed apart from any user's memory, with embeddings kept on disk."""

    @property
    def dataset_turns(self) -> TurnStore: ...
    @property
    def dataset_embed(self) -> EmbeddingCache: ...


class ModelHolder(Protocol):
    """Whoever holds the LLM that answers (and judges) the questions."""

    @property
    def llm(self) -> LLM: ...
