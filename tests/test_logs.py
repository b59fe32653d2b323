"""Logging is configured by one engine function, and the app, the CLI and the workers call it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SCRIPT = """
import logging
from memory.logs import configure_logging
configure_logging()
configure_logging()  # a Streamlit rerun calls it again
logging.getLogger("memory.upkeep.worker").warning("job j1 failed")
logging.getLogger("memory.stores.fact_index").debug("reloaded the index")
"""


def _run(env: dict[str, str]) -> str:
    full = {k: v for k, v in os.environ.items() if k != "MEMLAB_DEBUG"} | env
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=full, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_an_engine_warning_is_shown_once() -> None:
    err = _run({})
    assert err.count("WARNING memory.upkeep.worker: job j1 failed") == 1, err
    assert "reloaded the index" not in err


def test_memlab_debug_shows_debug_lines() -> None:
    assert "DEBUG memory.stores.fact_index: reloaded the index" in _run({"MEMLAB_DEBUG": "1"})


def test_the_app_and_every_page_configure_logging() -> None:
    """app.py (the home page) and ``get_lab`` (which every page calls) both ask; the CLI too."""
    assert "configure_logging()" in (ROOT / "app.py").read_text(encoding="utf-8")
    assert "configure_logging()" in (ROOT / "ui" / "state.py").read_text(encoding="utf-8")
    assert "configure_logging(logging.WARNING)" in (ROOT / "memory" / "tools" / "cli.py").read_text(encoding="utf-8")
