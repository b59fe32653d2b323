"""Which benchmark a file holds, from its content: LongMemEval or LoCoMo, plain or gzip-compressed.

Why from the content: ``python -m memory eval --data FILE`` and the Recall Lab take either, under any
name. A LongMemEval file is a list of questions, each with a ``question_id`` (LoCoMo's questions have
none); the first object of the file shows it, so the file is parsed once, by its own loader
(``longmemeval.read_bytes`` reads either kind, gunzipped when it is gzip).
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["locomo", "longmemeval"]
_SNIFF = 4096  # bytes: the first question's id is its first key, or close to it


def data_kind(raw: bytes) -> Kind:
    """``longmemeval`` when the (decompressed) bytes start a list of questions with ids, else ``locomo``."""
    head = raw[:_SNIFF].lstrip(b"\xef\xbb\xbf \t\r\n")  # (a byte-order mark, white space)
    return "longmemeval" if head.startswith(b"[") and b'"question_id"' in head else "locomo"
