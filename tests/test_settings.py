"""Settings are declared once (memory/config.py): the README's table, the strategy knobs and every reader follow.

Why: a variable read somewhere else, or a default written twice, drifts; a
secret in ``repr(settings)`` ends up in a cache key or a log line.
"""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from pathlib import Path

import pytest

from memory.config import STRATEGY_SETTINGS, Settings, env_setting, settings_table, strategy_bounds
from memory.errors import InputError
from memory.strategies import StrategyConfig

ROOT = Path(__file__).resolve().parent.parent
# Variables of the environment the engine reads (prefixes of ours and of the services it is pointed at).
OURS = re.compile(r"^(MEMLAB_|REDIS_|CHROMA_|ANTHROPIC_|OPENAI_|QDRANT_|AUDIT_)[A-Z_]+$")


def test_the_readme_lists_every_setting_with_its_default() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings_table() in readme, "README.md's settings table differs from memory.config.settings_table()"
    for f in fields(Settings):
        assert f"| `{f.metadata['env']}` |" in readme, f.metadata["env"]
        assert f.metadata["help"], f"{f.name} has no help text"


def test_no_engine_module_but_config_names_an_environment_variable_it_reads() -> None:
    """Every string like ``MEMLAB_X`` that a module passes to os.environ / getenv is config.py's alone."""
    readers = []
    for path in sorted((ROOT / "memory").rglob("*.py")):
        if path.name == "config.py" and path.parent.name == "memory":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                reads = name in ("os.environ.get", "os.getenv", "environ.get", "getenv")
                args = node.args[:1]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("os.environ", "environ"):
                reads = isinstance(node.ctx, ast.Load)
                args = [node.slice]
            else:
                continue
            for arg in args if reads else []:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and OURS.match(arg.value):
                    readers.append(f"{path.relative_to(ROOT)}:{node.lineno} reads {arg.value}")
    assert not readers, "read these through memory.config (Settings or env_setting):\n" + "\n".join(readers)


def test_every_variable_config_reads_is_declared_once() -> None:
    source = (ROOT / "memory" / "config.py").read_text(encoding="utf-8")
    named = set(re.findall(r'env="([A-Z_]+)"', source))
    declared = [f.metadata["env"] for f in fields(Settings)]
    assert len(declared) == len(set(declared)) and named == set(declared)


def test_secrets_are_never_in_a_repr_nor_in_a_cache_key() -> None:
    secret = "sk-secret-123"
    s = Settings.from_env({"ANTHROPIC_API_KEY": secret, "OPENAI_API_KEY": secret + "o"})
    other = Settings.from_env({"ANTHROPIC_API_KEY": secret + "x", "OPENAI_API_KEY": secret + "o"})
    assert secret not in repr(s) and secret not in s.cache_key()
    assert s.anthropic_api_key == secret
    assert s.cache_key() != other.cache_key(), "two keys are two configurations"
    pg = Settings.from_env({"AUDIT_DATABASE_URL": "postgresql://u:pw-123@db/x"})
    assert "pw-123" not in repr(pg) and "pw-123" not in pg.cache_key()


def test_strategy_knobs_take_their_defaults_and_bounds_from_the_settings() -> None:
    defaults = Settings()
    config = StrategyConfig()
    for knob, name in STRATEGY_SETTINGS.items():
        assert getattr(config, knob) == getattr(defaults, name), knob
    assert StrategyConfig.from_settings(Settings.from_env({"MEMLAB_EPISODES_K": "7"})).episodes_k == 7
    low, _ = strategy_bounds()["token_budget"]
    with pytest.raises(InputError, match="setting token_budget must be between 100"):
        StrategyConfig.checked({"token_budget": low - 1}, config)
    with pytest.raises(InputError, match="MEMLAB_TOKEN_BUDGET must be at least 100"):
        Settings.from_env({"MEMLAB_TOKEN_BUDGET": str(low - 1)})


def test_a_low_level_reader_gets_a_clear_error_for_a_bad_value() -> None:
    assert env_setting("embed_threads", {}) == 0
    assert env_setting("embedder", {"MEMLAB_EMBEDDER": " Torch "}) == "torch"
    with pytest.raises(InputError, match="MEMLAB_EMBED_THREADS must be a whole number"):
        env_setting("embed_threads", {"MEMLAB_EMBED_THREADS": "many"})
    with pytest.raises(InputError, match="MEMLAB_EMBEDDER must be onnx or torch"):
        Settings.from_env({"MEMLAB_EMBEDDER": "tf"})
