"""`memory-lab run`: serve the dashboard (the Streamlit app) from a checkout or from the installed package.

Streamlit reads ``.streamlit/config.toml`` from its working directory and
imports ``ui`` from beside ``app.py``, so the app runs from its own folder
(``paths.app_root``); paths given relative to where the command was typed
are made absolute first so they still mean the same folder. Nothing here
imports Streamlit: the process becomes ``python -m streamlit run``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

from ..config import path_variables
from ..errors import InputError
from ..paths import app_root

PATH_SETTINGS = path_variables()


def streamlit_command(host: str, port: int) -> list[str]:
    root = app_root()
    if not (root / "app.py").is_file():
        raise InputError(f"the dashboard's files are missing (no app.py in {root}); reinstall memory-lab")
    if not 1 <= port <= 65535:
        raise InputError(f"--port must be between 1 and 65535, got {port}")
    return [
        sys.executable, "-m", "streamlit", "run", str(root / "app.py"),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
    ]  # fmt: skip


def serve(host: str, port: int) -> NoReturn:
    """Replace this process with the Streamlit server (signals, exit code and output are then Streamlit's)."""
    command = streamlit_command(host, port)
    for name in PATH_SETTINGS:
        value = os.environ.get(name, "").strip()
        if value:
            os.environ[name] = str(Path(value).expanduser().resolve())
    os.chdir(app_root())
    sys.stdout.flush()
    os.execv(sys.executable, command)
