"""The hosted providers (Anthropic, any OpenAI-compatible server) through their real SDKs, against local servers.

Every test runs through both: the same turn, stream, extraction and failure
behaviour is what the README promises for each.
"""

from __future__ import annotations

import json
import threading

import pytest

from memory.config import Settings
from memory.errors import InputError
from memory.health import llm_status
from memory.lab import MemoryLab

from .llm_servers import PROVIDERS, Ask, Provider
from .openai_stub import CompletionsServer, completion_body, stream_lines


@pytest.fixture(params=list(PROVIDERS))
def provider(request: pytest.FixtureRequest) -> Provider:
    return PROVIDERS[request.param]


def _answer(ask: Ask) -> tuple[int, str, str]:
    if "Extract durable facts" in ask.system:
        if "Alice" in ask.messages[0]["content"]:
            return 200, json.dumps({"facts": [{"fact": "The user's name is Alice.", "slot": "name"}]}), "small"
        return 200, "Sorry, I cannot produce JSON today.", "small"
    if "running summary" in ask.system:
        return 200, "Alice introduced herself.", "small"
    answer = "Your name is Alice." if "Alice" in ask.system else "I do not know your name."
    return 200, answer, "test-reply"


def test_chat_through_the_sdk_with_facts(settings, provider):
    with provider.serve(_answer) as server:
        lab = MemoryLab(provider.settings(settings, server.url, model="main-model", small="small-model"))
        assert lab.llm.provider == provider.name
        first = lab.chat("alice", "s1", "My name is Alice.", strategy="facts")
        assert first.error is None and first.trace.warnings == []
        second = lab.chat("alice", "s2", "What is my name?", strategy="facts")
        assert second.reply.content == "Your name is Alice."
        assert second.reply.model_id == "test-reply"
        assert second.trace.llm["usage"] == {"input_tokens": 11, "output_tokens": 7}
        assert second.trace.llm["provider"] == provider.name, "every trace names the provider"
        reply_ask = [a for a in server.asks if a.model == "main-model"][-1]
        assert "The user's name is Alice." in reply_ask.system
        assert reply_ask.messages == [{"role": "user", "content": "What is my name?"}]
        assert provider.key_sent(server) == "sk-test"
        assert any(a.model == "small-model" for a in server.asks), "extraction uses the small model"


def test_invalid_json_from_extraction_falls_back_with_a_warning(settings, provider):
    with provider.serve(_answer) as server:
        lab = MemoryLab(provider.settings(settings, server.url))
        result = lab.chat("bob", "s1", "I use Python.", strategy="facts", wait_upkeep=True)
        assert result.reply is not None
        assert any("not valid JSON" in w for w in result.trace.warnings)
        assert [r.text for r in lab.facts.all("bob")] == ["You use Python."]


def test_summaries_go_through_the_provider(settings, provider):
    with provider.serve(_answer) as server:
        lab = MemoryLab(provider.settings(settings, server.url, small="small-model"))
        config = lab.default_config().with_(summary_threshold=2, summary_keep=0)
        lab.chat("alice", "s1", "My name is Alice.", strategy="summary", config=config, wait_upkeep=True)
        result = lab.chat("alice", "s1", "I like tea.", strategy="summary", config=config, wait_upkeep=True)
        assert result.error is None and result.trace.upkeep["fold"]["messages"] == 4
        assert lab.sessions.summary("alice", "s1") == "Alice introduced herself."
        assert any("running summary" in a.system and a.model == "small-model" for a in server.asks)


def test_a_failed_llm_call_loses_nothing(settings, provider):
    with provider.serve(lambda ask: (400, "model is on fire", "")) as server:
        lab = MemoryLab(provider.settings(settings, server.url))
        result = lab.chat("carol", "s1", "Please remember the launch code 1234.", strategy="buffer")
        assert result.reply is None
        assert "HTTP 400" in result.error and "model is on fire" in result.error
        assert [m.content for m in lab.sessions.log("carol", "s1").messages] == [
            "Please remember the launch code 1234."
        ]
        assert dict(lab.sessions.traces("carol", "s1").items)[result.user_message.id].error == result.error


def test_a_server_error_is_retried_then_reported(settings, provider):
    with provider.serve(lambda ask: (500, "internal trouble", "")) as server:
        lab = MemoryLab(provider.settings(settings, server.url))
        result = lab.chat("carol", "s1", "hello", strategy="buffer")
        assert result.reply is None and "HTTP 500" in result.error and "internal trouble" in result.error
        assert len(server.requests) == 3, "the SDK retried twice"


def test_unreachable_server_is_a_clear_error(settings, provider):
    lab = MemoryLab(provider.settings(settings, "http://127.0.0.1:9", timeout=2))
    result = lab.chat("dave", "s1", "hello", strategy="buffer")
    assert result.reply is None and f"Cannot reach {provider.who}" in result.error


def test_a_hung_server_times_out_with_a_clear_error(settings, provider):
    release = threading.Event()

    def hang(ask):
        release.wait(30)
        return 200, "too late", "m"

    with provider.serve(hang) as server:
        try:
            lab = MemoryLab(provider.settings(settings, server.url, timeout=1))
            result = lab.chat("erin", "s1", "hello", strategy="buffer")
            turn = lab.chat_stream("erin", "s1", "hello again", strategy="buffer")
            assert list(turn) == []
        finally:
            release.set()
    assert result.reply is None and "did not answer within 1s" in result.error
    assert turn.result.reply is None and "did not answer within 1s" in turn.result.error
    assert [m.content for m in lab.sessions.log("erin", "s1").messages] == ["hello", "hello again"]


def test_a_reply_streams_through_the_sdk_and_the_turn_is_stored_whole(settings, provider):
    with provider.serve(_answer) as server:
        lab = MemoryLab(provider.settings(settings, server.url))
        assert lab.llm.streams
        lab.chat("alice", "s1", "My name is Alice.", strategy="facts")
        turn = lab.chat_stream("alice", "s2", "What is my name?", strategy="facts")
        pieces = list(turn)
        assert pieces == ["Your ", "name ", "is ", "Alice."], "the text arrives in pieces"
        assert server.streamed and [a.model for a in server.asks if a.stream] == [provider.default_model]
        result = turn.result
        assert result is not None and result.error is None
        assert result.reply.content == "Your name is Alice." and result.reply.model_id == "test-reply"
        assert result.trace.llm["usage"] == {"input_tokens": 11, "output_tokens": 7}
        assert result.trace.llm["provider"] == provider.name
        assert "llm.reply" in result.trace.timings_ms
        assert [m.content for m in lab.sessions.log("alice", "s2").messages] == [
            "What is my name?",
            "Your name is Alice.",
        ]


def test_a_failed_stream_loses_nothing(settings, provider):
    with provider.serve(lambda ask: (529, "overloaded", "")) as server:
        lab = MemoryLab(provider.settings(settings, server.url, timeout=5))
        turn = lab.chat_stream("carol", "s1", "Remember 42.", strategy="buffer")
        assert list(turn) == []
        assert turn.result is not None and turn.result.reply is None and "529" in turn.result.error
        assert [m.content for m in lab.sessions.log("carol", "s1").messages] == ["Remember 42."]


def test_offline_streams_once(lab):
    assert not lab.llm.streams
    turn = lab.chat_stream("zoe", "s1", "My name is Zoe.", strategy="buffer")
    assert "".join(turn).startswith("Noted: your name is Zoe.")
    assert turn.result.reply.content.startswith("Noted: your name is Zoe.")


# -- what only an OpenAI-compatible server can get wrong ---------------------------------------------------------


def _openai_lab(settings: Settings, url: str) -> MemoryLab:
    return MemoryLab(PROVIDERS["openai"].settings(settings, url, timeout=5))


@pytest.mark.parametrize(
    "payload, needle",
    [
        (b"<html>Bad gateway, but 200</html>", "not the API's format"),
        (b'{"id": "x", "object": "chat.completion"}', "no choices"),
        (completion_body("x", choices=False), "no choices"),
        (completion_body(None), "no text"),
    ],
    ids=["not-json", "no-choices-field", "empty-choices", "null-content"],
)
def test_a_reply_that_is_not_a_completion_is_an_llm_error(settings, payload, needle):
    with CompletionsServer(lambda body: (200, payload)) as server:
        lab = _openai_lab(settings, server.url)
        result = lab.chat("frank", "s1", "hello", strategy="buffer")
        assert result.reply is None and needle in result.error, result.error
        assert [m.content for m in lab.sessions.log("frank", "s1").messages] == ["hello"]


_HALF = stream_lines(completion_body("Half a reply"))


@pytest.mark.parametrize(
    "lines, needle",
    [
        (_HALF[:2] + [b"data: {not json\n\n"], "not the API's format"),
        (stream_lines(completion_body("x", choices=False)), "streamed no choices"),
        ([b"data: [DONE]\n\n"], "streamed no choices"),
        (_HALF[:3], "ended before the reply was finished"),
    ],
    ids=["broken-chunk", "empty-choices", "only-done", "cut-off"],
)
def test_a_broken_stream_is_an_llm_error_and_loses_nothing(settings, lines, needle):
    with CompletionsServer(lambda body: (200, lines)) as server:
        lab = _openai_lab(settings, server.url)
        turn = lab.chat_stream("gina", "s1", "hello", strategy="buffer")
        list(turn)
        assert turn.result is not None and turn.result.reply is None
        assert needle in turn.result.error, turn.result.error
        assert [m.content for m in lab.sessions.log("gina", "s1").messages] == ["hello"]


def test_settings_choose_the_provider(tmp_path):
    env = {"MEMLAB_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(env).llm_provider == "offline"
    assert Settings.from_env({**env, "ANTHROPIC_API_KEY": "k"}).llm_provider == "anthropic"
    chosen = Settings.from_env(
        {**env, "ANTHROPIC_API_KEY": "k", "MEMLAB_LLM": "OpenAI", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}
    )
    assert chosen.llm_provider == "openai" and chosen.openai_base_url == "http://127.0.0.1:1/v1"
    assert Settings.from_env({**env, "MEMLAB_LLM": "offline", "ANTHROPIC_API_KEY": "k"}).llm_provider == "offline"
    for bad, needle in [
        ({"MEMLAB_LLM": "gpt"}, "MEMLAB_LLM must be one of"),
        ({"MEMLAB_LLM": "openai"}, "needs OPENAI_API_KEY"),
        ({"MEMLAB_LLM": "anthropic"}, "needs ANTHROPIC_API_KEY"),
    ]:
        with pytest.raises(InputError, match=needle):
            Settings.from_env({**env, **bad})


def test_doctor_names_the_provider_and_model(settings):
    with CompletionsServer(lambda body: (200, completion_body("hi"))) as server:
        lab = MemoryLab(PROVIDERS["openai"].settings(settings, server.url, model="llama3.2"))
        status = llm_status(lab)
        assert (status.mode, status.version, status.location) == ("openai", "llama3.2", server.url)
        assert "sk-test" not in repr(status), "the key is never shown"
