"""Input a person gives that the engine cannot use is an InputError: one line, exit 2, never "a bug" (exit 70)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memory.errors import InputError
from memory.eval.runner import evaluate
from memory.records.messages import Message, Role

from .conftest import assert_one_line_error, run_cli

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "recall_sample.json"


def test_an_eval_by_fact_on_data_without_observations_is_an_input_error(settings, tmp_path):
    data = json.loads(SAMPLE.read_text(encoding="utf-8"))
    for conversation in data:
        conversation.pop("observation", None)
    bare = tmp_path / "no_observations.json"
    bare.write_text(json.dumps(data), encoding="utf-8")
    env = {"REDIS_URL": settings.redis_url, "MEMLAB_DATA_DIR": str(settings.data_dir)}
    run = run_cli("eval", "--data", str(bare), "--unit", "fact", "--quiet", env=env)
    assert_one_line_error(run, 2, "observation")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"unit": "paragraph"}, "unknown unit"),
        ({"retriever": "psychic"}, "unknown retriever"),
        ({"ks": [0]}, "at least 1"),
    ],
)
def test_a_wrong_eval_option_is_an_input_error(kwargs, words):
    with pytest.raises(InputError, match=words):
        evaluate(None, [], **kwargs)  # type: ignore[arg-type]  # refused before the lab is used


def test_a_message_that_cannot_be_is_an_input_error():
    with pytest.raises(InputError, match="plausible time"):
        Message(Role.USER, "hello", created_at=-1e12)
    with pytest.raises(InputError, match="tool_call_id"):
        Message(Role.USER, "hello", tool_call_id="x")
