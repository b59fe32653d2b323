"""The ONNX Runtime path gives the packaged model's own embeddings, without torch, in a fraction of the load time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from memory.backends.embedder import Embedder, get_embedder

SAMPLE = [
    "My name is Alice and I moved to Malmö last spring.",
    "What is my name?",
    "Ich wohne in Köln und trinke gern Kaffee. 東京に住んでいます。",
    "",
    "word " * 600,  # longer than the model's 256 tokens: both paths truncate alike
    "I adopted a greyhound called Comet; he hates rain!",
]


def test_onnx_embeddings_match_sentence_transformers(monkeypatch):
    onnx = get_embedder()
    assert onnx.backend == "onnx"
    monkeypatch.setenv("MEMLAB_EMBEDDER", "torch")
    torch_path = Embedder()
    assert torch_path.backend == "torch"
    a, b = onnx.embed(SAMPLE), torch_path.embed(SAMPLE)
    assert a.shape == b.shape == (len(SAMPLE), 384)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() >= 0.999, cosines
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    # order within a batch does not change a text's vector (batches are sorted by length inside)
    assert np.allclose(onnx.embed(SAMPLE[::-1])[::-1], a, atol=1e-5)


def test_a_fresh_process_embeds_without_importing_torch():
    code = (
        "import sys; from memory.backends.embedder import get_embedder; get_embedder().embed(['hi']); "
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=str(Path(__file__).parent.parent), timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_data_set_embeddings_are_cached_on_disk_by_model_and_text(tmp_path):
    from memory.backends.embedding_cache import EmbeddingCache

    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return get_embedder().embed(texts)

    cache = EmbeddingCache(embed, tmp_path / "vectors.sqlite3", "minilm:1")
    first = cache(["alpha", "beta", "alpha"])
    assert calls == [["alpha", "beta"]], "each new text embedded once, in one call"
    again = EmbeddingCache(embed, tmp_path / "vectors.sqlite3", "minilm:1")(["beta", "alpha", "gamma"])
    assert calls[1:] == [["gamma"]], "a new process reads the known vectors from disk"
    assert np.allclose(again[0], first[1]) and np.allclose(again[1], first[0])
    EmbeddingCache(embed, tmp_path / "vectors.sqlite3", "another-model:2")(["alpha"])
    assert calls[-1] == ["alpha"], "vectors are keyed by model"
