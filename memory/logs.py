"""Logging set up once per process, the same way for the app, the CLI and the workers.

Why: the engine logs what it skips or retries (a corrupt entry, a failed
upkeep job, a backend that came back) as warnings; a process that never
configures logging shows none of them. Each entry point calls
``configure_logging``: the app and the workers at WARNING (their log is their
report), the CLI at ERROR (its promise is one line per failure).
``MEMLAB_DEBUG=1`` turns every one of them to DEBUG. Calling it again only
changes the level: the handler is added once, so a Streamlit rerun does not
print each line twice.
"""

from __future__ import annotations

import logging
import sys

from .config import env_setting

FORMAT = "%(levelname)s %(name)s: %(message)s"
_MARK = "_memlab_handler"


def configure_logging(level: int = logging.WARNING) -> int:
    """Log to stderr at ``level`` (DEBUG with MEMLAB_DEBUG); returns the level set."""
    if env_setting("debug"):
        level = logging.DEBUG
    root = logging.getLogger()
    if not any(getattr(h, _MARK, False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    root.setLevel(level)
    return level
