"""Session replay: what memory held at turn N and what the model was sent, rebuilt from what is stored."""

from __future__ import annotations

import json
import time

import pytest

from memory.errors import InputError
from memory.timeline.replay import SessionReplay

from .conftest import assert_one_line_error, run_cli


def _summary_sent(state) -> str:
    items = [p.items[0]["text"] for p in state.trace.system_parts if p.name == "summary"]
    return items[0] if items else ""


def _chat_20_turns(lab):
    config = lab.default_config().with_(summary_threshold=16, summary_keep=4)
    for i in range(1, 21):
        text = f"Turn {i}: my project number {i} is called Alpha{i}." if i != 3 else "My name is Alice."
        lab.chat("maya", "s1", text, strategy="summary", config=config, wait_upkeep=True)
    return config


def test_a_20_turn_session_that_folded_twice_shows_the_right_summary_at_turns_5_12_and_20(lab):
    _chat_20_turns(lab)
    folds = lab.sessions.folds("maya", "s1").items
    assert len(folds) == 2, "the session should fold twice (after turns 9 and 16)"
    replay = SessionReplay(lab, "maya", "s1")
    five, twelve, twenty = replay.at(5), replay.at(12), replay.at(20)
    assert (five.summary, five.fold) == ("", None)
    assert twelve.fold.number == 1 and twenty.fold.number == 2
    assert "Alice" in twelve.summary and twelve.summary != twenty.summary
    assert twenty.summary == lab.sessions.summary("maya", "s1")
    # What the replay says memory held is what the model was sent at that turn.
    for state in (five, twelve, twenty):
        assert state.summary == _summary_sent(state)
        sent = [m["id"] for m in state.trace.messages]
        assert [m.id for m in state.buffer] == sent, f"turn {state.turn}: the buffer is what the model saw"
        assert not [n for n in state.notes if "not stored" in n]
    assert twelve.buffer[0].content.startswith("Turn 10") or twelve.buffer[0].role.value == "user"
    diff = replay.diff(5, 12)
    assert [f.number for f in diff.folds] == [1] and diff.summary
    assert {m.id for m in diff.buffer_removed} <= set(folds[0].message_ids) | {m.id for m in five.buffer}


def test_a_summary_whose_audit_row_is_gone_is_said_to_be_unknown_not_guessed(lab):
    _chat_20_turns(lab)
    lab.audit._run("DELETE FROM memlab_audit WHERE action = 'fold'")
    replay = SessionReplay(lab, "maya", "s1")
    twelve, twenty = replay.at(12), replay.at(20)
    assert twelve.summary == "" and twelve.fold.summary is None
    assert any("not stored" in n for n in twelve.notes)
    assert twenty.summary == lab.sessions.summary("maya", "s1"), "the newest fold's summary is the current one"


def test_facts_at_a_turn_are_those_valid_then(lab):
    lab.chat("maya", "s2", "I live in Berlin.", strategy="facts", wait_upkeep=True)
    lab.chat("maya", "s2", "What is the weather like?", strategy="facts", wait_upkeep=True)
    lab.chat("maya", "s2", "I moved to Lisbon last month.", strategy="facts", wait_upkeep=True)
    replay = SessionReplay(lab, "maya", "s2")
    assert [f.text for f in replay.at(2).facts if "live" in f.text] == ["You live in Berlin."]
    now = [f.text for f in replay.at(3).facts]
    assert "You live in Berlin." in now, "turn 3's reply was written before its own upkeep"
    diff = replay.diff(1, 3)
    assert not diff.facts_removed
    with pytest.raises(InputError, match="no turn 9"):
        replay.at(9)
    with pytest.raises(InputError, match="no stored messages"):
        SessionReplay(lab, "maya", "nosuch")


def test_the_cli_replays_a_turn_and_a_diff_as_json_and_refuses_bad_input(lab):
    _chat_20_turns(lab)
    env = {"REDIS_URL": lab.settings.redis_url, "MEMLAB_DATA_DIR": str(lab.settings.data_dir)}
    run = run_cli("replay", "s1", "--user", "maya", "--turn", "12", "--json", env=env)
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert data["turn"]["fold"]["number"] == 1 and "Alice" in data["turn"]["summary"]
    run = run_cli("replay", "s1", "--user", "maya", "--turn", "20", "--diff", "5", env=env)
    assert run.code == 0 and "fold 1" in run.out and "fold 2" in run.out, run.out
    assert_one_line_error(run_cli("replay", "s1", "--user", "maya", "--turn", "99", env=env), 2, "no turn 99")
    assert_one_line_error(run_cli("replay", "bad id!", "--user", "maya", "--turn", "1", env=env), 2, "session id")


def test_replaying_turn_250_of_a_500_turn_session_benchmark(lab):
    """Prints how long turn 250 of a 500-turn session takes to replay, against reading the session's transcript
    (a ratio; no timed assertion)."""
    from memory.records.messages import Message, Role
    from memory.records.trace import Trace

    config = lab.default_config().with_(summary_threshold=40, summary_keep=10)
    keys = lab.keys.session("maya", "long")
    start = time.time() - 10_000
    pipe = lab.redis.pipeline(transaction=False)
    for i in range(500):
        user = Message(Role.USER, f"Message {i} about project Alpha{i}.", created_at=start + 10 * i)
        reply = Message(Role.ASSISTANT, f"Noted {i}.", created_at=start + 10 * i + 1)
        lab.sessions.append("maya", "long", user)
        lab.sessions.append("maya", "long", reply)
        trace = Trace("summary", "maya", "long", settings=config.to_dict())
        pipe.hset(keys.traces, reply.id, json.dumps(trace.to_dict(derived=False)))
    pipe.execute()
    lab.sessions.fold("maya", "long", 40, 10, lambda prev, msgs: prev + f" {len(msgs)} more.")

    def best(fn, n=5):
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    replay_s = best(lambda: SessionReplay(lab, "maya", "long").at(250))
    read_s = best(lambda: lab.sessions.log("maya", "long"))
    state = SessionReplay(lab, "maya", "long").at(250)
    assert state.turn == 250 and state.buffer and state.trace is not None
    print(
        f"\nreplay of turn 250 of 500: {replay_s * 1000:.1f} ms; reading the transcript alone: {read_s * 1000:.1f} ms; "
        f"ratio {replay_s / read_s:.1f}x"
    )


@pytest.mark.usefixtures("app_env")
def test_the_replay_page_moves_through_turns_diffs_two_and_opens_at_a_linked_message(lab):
    from streamlit.testing.v1 import AppTest

    from .page_app import APP

    _chat_20_turns(lab)
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["user_id"], at.session_state["session_id"] = "maya", "s1"
    at.switch_page("pages/session_replay.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.slider(key="replay_turn:maya:s1").value == 20
    at.slider(key="replay_turn:maya:s1").set_value(12).run()
    shown = " ".join(c.value for c in at.caption)
    assert "Made by fold 1" in shown
    assert any("Alice" in c.value for c in at.code)
    at.slider(key="replay_turn:maya:s1").set_value(5).run()
    assert any("No fold yet" in c.value for c in at.caption)
    at.toggle(key="replay_compare").set_value(True).run()
    at.slider(key="replay_turn:maya:s1").set_value(20).run()
    at.slider(key="replay_other:maya:s1").set_value(5).run()
    assert any("from turn 5 to turn 20" in s.value for s in at.subheader)
    assert any("fold 2" in m.value for m in at.markdown)
    assert not at.exception and not at.error
    message = SessionReplay(lab, "maya", "s1").turn(7).user.id
    linked = AppTest.from_file(APP, default_timeout=180)
    linked.session_state["user_id"], linked.session_state["session_id"] = "maya", "s1"
    linked.query_params["message"] = message
    linked.switch_page("pages/session_replay.py")
    linked.run()
    assert linked.slider(key="replay_turn:maya:s1").value == 7
