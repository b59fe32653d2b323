"""The Redis keys page through AppTest: the key table, decoded values, bulk changes, dead letters, other libraries."""

from __future__ import annotations

import json

from .page_app import assert_clean, open_page


def test_redis_keys_filter_and_decode(app_env):
    at = open_page("pages/chat.py")
    at.chat_input[0].set_value("Hello there").run()
    at.switch_page("pages/redis_keys.py").run()
    at.text_input(key="key_pattern").set_value("memlab:s:*:log").run()
    assert_clean(at, "Redis keys")
    table = at.dataframe[0].value
    assert list(table["key"]) == ["memlab:s:{alice:s1}:log"]
    messages = at.dataframe[1].value
    assert list(messages["content"]) == ["Hello there", messages["content"].iloc[1]]
    assert list(messages["role"]) == ["user", "assistant"]
    assert table["TTL"].iloc[0] in ("7 d", "6 d 23 h") and table["expires"].iloc[0][:2] == "20"  # a full date


def test_redis_keys_open_on_the_users_keys_and_show_hashes_as_tables(app_env):
    at = open_page("pages/chat.py")
    at.chat_input[0].set_value("Hello there").run()
    at.session_state["user_id"] = "bob"
    at.chat_input[0].set_value("Hi, I am Bob").run()
    at.switch_page("pages/redis_keys.py").run()
    assert_clean(at, "Redis keys")
    keys = list(at.dataframe[0].value["key"])
    assert keys and all("{bob" in k for k in keys), keys  # the current user's keys by default
    at.toggle(key="key_all").set_value(True).run()
    assert any("{alice" in k for k in at.dataframe[0].value["key"])
    at.toggle(key="key_all").set_value(False).run()
    traces = next(i for i, k in enumerate(at.dataframe[0].value["key"]) if k.endswith(":traces"))
    at.selectbox(key="key_chosen_index").set_value(traces).run()
    shown = at.dataframe[1].value
    assert list(shown.columns) == ["field", "value", "format"] and shown["format"].iloc[0] == "JSON"


def test_redis_keys_show_a_langchain_history_as_a_conversation_and_memory_by_user(app_env, redis_server):
    import warnings

    import redis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.chat_message_histories import RedisChatMessageHistory
    history = RedisChatMessageHistory("support-42", url=redis_server.url, ttl=7 * 86400)
    history.add_user_message("My order is late.")
    history.add_ai_message("Let me check order 1234.")
    raw = redis.Redis.from_url(redis_server.url)
    raw.lpush(b"message_store:\xff\xfe", json.dumps({"type": "human", "data": {"content": "odd key"}}))
    raw.hset(
        b"vl:\xff:1.5", mapping={"entry_id": b"\xff:1.5", "role": "user", "content": b"\xfe", "session_tag": b"\xff"}
    )
    raw.close()
    at = open_page("pages/chat.py")
    at.chat_input[0].set_value("Hello there").run()
    at.switch_page("pages/redis_keys.py").run()
    assert_clean(at, "Redis keys")
    assert len(at.dataframe(key="foreign_table").value) == 3, "odd key names are listed, not a crash"
    said = [m.markdown[-1].value for m in at.chat_message]
    assert said == ["My order is late\\.", "Let me check order 1234\\."]  # escaped: stored text is never markup
    assert any(
        "LangChain RedisChatMessageHistory" in md.value and ("6 d 23 h" in md.value or "7 d" in md.value)
        for md in at.markdown
    )
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Keys"].replace(",", "")) >= 5 and metrics["Memory"].endswith(("KiB", "B"))


def test_redis_keys_bulk_ttl_needs_a_tick_and_then_changes_every_matching_key(app_env, lab):
    lab.chat("alice", "s1", "Hello", strategy="buffer", wait_upkeep=True)
    lab.chat("alice", "s2", "Hello", strategy="buffer", wait_upkeep=True)
    at = open_page("pages/redis_keys.py")
    at.text_input(key="key_pattern").set_value("memlab:s:{alice:*}:*").run()
    [b for b in at.button if b.label == "Apply"][0].click().run()
    assert any("Tick the box" in w.value for w in at.warning)
    keys = [k for k in lab.redis.scan_iter("memlab:s:{alice:*}:*")]
    assert keys and all(lab.redis.ttl(k) > 0 for k in keys)
    at.radio(key="bulk_action").set_value("Set TTL")  # a form sends its widgets with the submit
    at.number_input(key="bulk_ttl").set_value(0)
    at.checkbox(key="bulk_confirm").check()
    [b for b in at.button if b.label == "Apply"][0].click().run()
    assert any(f"Set the TTL of {len(keys)} keys" in s.value for s in at.success), (
        [s.value for s in at.success],
        [w.value for w in at.warning],
        [e.value for e in at.error],
    )
    assert all(lab.redis.ttl(k) == -1 for k in keys)


def test_redis_keys_bulk_delete_leaves_other_apps_keys_under_our_prefix(app_env, lab, raw_redis):
    lab.chat("alice", "s1", "Hello", strategy="buffer")
    raw_redis.set("memlab:other-app:cache:1", b"keep me")
    at = open_page("pages/redis_keys.py")
    at.text_input(key="key_pattern").set_value("memlab:*").run()
    assert any("1** of them are not keys Memory Lab builds" in md.value for md in at.markdown)
    at.radio(key="bulk_action").set_value("Delete")
    at.checkbox(key="bulk_confirm").check()
    [b for b in at.button if b.label == "Apply"][0].click().run()
    assert any("left 1 other keys alone" in s.value for s in at.success), [s.value for s in at.success]
    assert raw_redis.get("memlab:other-app:cache:1") == b"keep me"
    assert list(lab.redis.scan_iter("memlab:s:*")) == []


def test_redis_keys_show_the_upkeep_dead_letters_with_their_reasons(app_env, lab):
    from memory.upkeep.worker import Worker

    lab.redis.xadd(lab.keys.jobs, {"job": "not a job"})
    lab.redis.xadd(lab.keys.jobs, {"job": json.dumps({"user_id": "alice\n", "messages": []})})
    worker = Worker(lab, name="w", block_ms=50)
    while worker.run_once():
        pass
    at = open_page("pages/redis_keys.py")
    assert_clean(at, "Redis keys")
    shown = at.dataframe(key="dead_letters_table").value
    assert list(shown["reason"]) == [
        "user_id 'alice\\n' is not a valid user id",
        "not a job: not valid JSON: Expecting value: line 1 column 1 (char 0)",
    ]
    assert list(shown["entry as stored (start)"])[1] == "not a job"
