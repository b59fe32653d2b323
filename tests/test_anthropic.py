"""The Anthropic provider through the real SDK, against a local Messages API server."""

from __future__ import annotations

import json
from dataclasses import replace

from memory.lab import MemoryLab

from .anthropic_stub import MessagesServer, message_body


def _responder(body):
    system = body.get("system") or ""
    if "Extract durable facts" in system:
        user_text = body["messages"][0]["content"]
        if "Alice" in user_text:
            return 200, message_body(json.dumps({"facts": [{"fact": "The user's name is Alice.", "slot": "name"}]}))
        return 200, message_body("Sorry, I cannot produce JSON today.")
    if "running summary" in system:
        return 200, message_body("Alice introduced herself.")
    answer = "Your name is Alice." if "Alice" in system else "I do not know your name."
    return 200, message_body(answer, model="claude-test-reply")


def test_chat_through_the_sdk_with_facts(settings):
    with MessagesServer(_responder) as server:
        lab = MemoryLab(
            replace(
                settings,
                anthropic_api_key="sk-test",
                anthropic_base_url=server.url,
                anthropic_model="claude-main",
                anthropic_small_model="claude-small",
            )
        )
        assert lab.llm.provider == "anthropic"
        first = lab.chat("alice", "s1", "My name is Alice.", strategy="facts")
        assert first.error is None and first.trace.warnings == []
        second = lab.chat("alice", "s2", "What is my name?", strategy="facts")
        assert second.reply.content == "Your name is Alice."
        assert second.reply.model_id == "claude-test-reply"
        assert second.trace.llm["usage"] == {"input_tokens": 11, "output_tokens": 7}
        reply_request = [r for r in server.requests if r["model"] == "claude-main"][-1]
        assert "The user's name is Alice." in reply_request["system"]
        assert reply_request["messages"] == [{"role": "user", "content": "What is my name?"}]
        sent_key = server.headers[-1].get("x-api-key") or server.headers[-1].get("authorization", "")
        assert sent_key.removeprefix("Bearer ") == "sk-test"
        assert any(r["model"] == "claude-small" for r in server.requests)


def test_invalid_json_from_extraction_falls_back_with_a_warning(settings):
    with MessagesServer(_responder) as server:
        lab = MemoryLab(replace(settings, anthropic_api_key="sk-test", anthropic_base_url=server.url))
        result = lab.chat("bob", "s1", "I use Python.", strategy="facts", wait_upkeep=True)
        assert result.reply is not None
        assert any("not valid JSON" in w for w in result.trace.warnings)
        assert [r.text for r in lab.facts.all("bob")] == ["You use Python."]


def test_a_failed_llm_call_loses_nothing(settings):
    def broken(body):
        return 400, {"type": "error", "error": {"type": "invalid_request_error", "message": "model is on fire"}}

    with MessagesServer(broken) as server:
        lab = MemoryLab(replace(settings, anthropic_api_key="sk-test", anthropic_base_url=server.url))
        result = lab.chat("carol", "s1", "Please remember the launch code 1234.", strategy="buffer")
        assert result.reply is None
        assert "HTTP 400" in result.error and "model is on fire" in result.error
        assert [m.content for m in lab.sessions.log("carol", "s1").messages] == [
            "Please remember the launch code 1234."
        ]
        assert dict(lab.sessions.traces("carol", "s1").items)[result.user_message.id].error == result.error


def test_unreachable_server_is_a_clear_error(settings):
    lab = MemoryLab(
        replace(settings, anthropic_api_key="sk-test", anthropic_base_url="http://127.0.0.1:9", llm_timeout_s=2)
    )
    result = lab.chat("dave", "s1", "hello", strategy="buffer")
    assert result.reply is None and "Cannot reach Anthropic" in result.error


def test_a_reply_streams_through_the_sdk_and_the_turn_is_stored_whole(settings):
    with MessagesServer(_responder) as server:
        lab = MemoryLab(replace(settings, anthropic_api_key="sk-test", anthropic_base_url=server.url))
        lab.chat("alice", "s1", "My name is Alice.", strategy="facts")
        turn = lab.chat_stream("alice", "s2", "What is my name?", strategy="facts")
        pieces = list(turn)
        assert pieces == ["Your ", "name ", "is ", "Alice."], "the text arrives in pieces"
        assert server.streamed and [r["model"] for r in server.requests if r.get("stream")] == ["claude-sonnet-4-5"]
        result = turn.result
        assert result is not None and result.error is None
        assert result.reply.content == "Your name is Alice." and result.reply.model_id == "claude-test-reply"
        assert result.trace.llm["usage"] == {"input_tokens": 11, "output_tokens": 7}
        assert "llm.reply" in result.trace.timings_ms
        assert [m.content for m in lab.sessions.log("alice", "s2").messages] == [
            "What is my name?",
            "Your name is Alice.",
        ]


def test_a_failed_stream_loses_nothing(settings):
    def broken(body):
        return 529, {"type": "error", "error": {"type": "overloaded_error", "message": "overloaded"}}

    with MessagesServer(broken) as server:
        lab = MemoryLab(replace(settings, anthropic_api_key="sk-test", anthropic_base_url=server.url, llm_timeout_s=5))
        turn = lab.chat_stream("carol", "s1", "Remember 42.", strategy="buffer")
        assert list(turn) == []
        assert turn.result is not None and turn.result.reply is None and "529" in turn.result.error
        assert [m.content for m in lab.sessions.log("carol", "s1").messages] == ["Remember 42."]


def test_offline_streams_once(lab):
    turn = lab.chat_stream("zoe", "s1", "My name is Zoe.", strategy="buffer")
    assert "".join(turn).startswith("Noted: your name is Zoe.")
    assert turn.result.reply.content.startswith("Noted: your name is Zoe.")
