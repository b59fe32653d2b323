"""Memory Lab's engine: typed messages, memory strategies on Redis and Chroma, a chat turn with its trace.

No Streamlit here: the engine is usable from scripts, notebooks and the CLI.

    from memory import MemoryLab
    lab = MemoryLab()
    result = lab.chat("alice", "s1", "My name is Alice.", strategy="hybrid")
"""

__version__ = "0.1.0"  # the package's version (pyproject.toml reads it)

from .config import Settings
from .keys import InvalidIdError, Keys
from .lab import BackendUnavailable, ChatResult, MemoryLab
from .records.messages import Message, Role
from .records.trace import Trace
from .strategies import STRATEGIES, StrategyConfig

__all__ = [
    "STRATEGIES",
    "BackendUnavailable",
    "ChatResult",
    "InvalidIdError",
    "Keys",
    "MemoryLab",
    "Message",
    "Role",
    "Settings",
    "StrategyConfig",
    "Trace",
]
