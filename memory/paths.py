"""Where Memory Lab's files are: a source checkout, or an installed package (``pip install .``, a wheel).

From a checkout everything is beside ``app.py`` as ever (data in ``./data``,
the model cache in ``./.cache``). An installed package keeps the app's files
(``app.py``, ``pages/``, ``ui/``, scenarios, samples, the Streamlit config) in
its ``memory_lab_app`` folder, and data and caches in the user's folders
(``$XDG_DATA_HOME/memory-lab``, ``$XDG_CACHE_HOME/memory-lab``): an MCP client
may start the server in any working directory, and site-packages is no
place for a database.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP_PACKAGE = "memory_lab_app"  # the app's files in a wheel (pyproject.toml maps the checkout's root to it)


def from_checkout() -> bool:
    return (PROJECT_ROOT / "app.py").is_file()


def app_root() -> Path:
    """The folder holding app.py, pages/, ui/, scenarios/, samples/, assets/ and .streamlit/."""
    if from_checkout():
        return PROJECT_ROOT
    spec = importlib.util.find_spec(APP_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return PROJECT_ROOT


def _user_folder(variable: str, fallback: str) -> Path:
    base = os.environ.get(variable, "").strip()
    return (Path(base) if base else Path.home() / fallback) / "memory-lab"


def default_data_dir() -> Path:
    return PROJECT_ROOT / "data" if from_checkout() else _user_folder("XDG_DATA_HOME", ".local/share")


def default_model_cache() -> Path:
    return (
        PROJECT_ROOT / ".cache" / "models" if from_checkout() else _user_folder("XDG_CACHE_HOME", ".cache") / "models"
    )
