"""numpy's BLAS on one thread for the engine's scans, so they do not slow the embedding that follows.

Why: OpenBLAS splits a product over both cores and its threads then spin
for a while, waiting for more work. The next query's embedding (ONNX
Runtime, also on both cores) runs against them: measured on the 2-core
machine, embedding a query after a scan of 10,000 facts took 8.4 ms instead
of 3.0 ms. On one thread the scan itself costs ~0.2 ms more and nothing
spins. The limit holds only inside the block (``threadpoolctl`` sets
OpenBLAS's thread count and restores it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_controller: Any = None
_lock = threading.Lock()


def _get_controller() -> Any:
    global _controller
    with _lock:
        if _controller is None:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()  # finds the BLAS libraries once (~ms)
        return _controller


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with numpy's BLAS on one thread (about 13 µs to set and restore)."""
    with _get_controller().limit(limits=1, user_api="blas"):
        yield
