"""Retention you can see: the preview is what apply removes, pinned facts stay, a run is undone exactly."""

from __future__ import annotations

import json
import time

import pytest

from memory.errors import InputError
from memory.llm.base import ExtractedFact
from memory.timeline import retention as rt
from memory.timeline.versions import fact_history

from .conftest import assert_one_line_error, run_cli

DAY = 86_400.0


def _facts(lab, user="maya"):
    said = [
        ("You live in Berlin.", "location"),
        ("You work at Spotify.", "employer"),
        ("You have a dog called Rex.", None),
        ("You play the cello.", None),
    ]
    events = lab.facts.remember(user, "s1", [ExtractedFact(t, slot=s, action="state") for t, s in said], job="m1")
    return {e.text: e.fact_id for e in events if e.event == "ADD"}


def test_the_preview_is_exactly_what_apply_removes_and_a_pinned_fact_survives(lab):
    ids = _facts(lab)
    rt.pin(lab, "maya", ids["You have a dog called Rex."])
    rt.set_policy(lab, "maya", rt.RetentionPolicy(max_age_days=30))
    later = time.time() + 40 * DAY  # forty days on: every fact is past the age
    shown = rt.preview(lab, "maya", now=later)
    assert {r.text for r in shown} == {"You live in Berlin.", "You work at Spotify.", "You play the cello."}
    assert rt.preview(lab, "maya") == [], "today nothing is old enough"
    before = {r.id for r in lab.facts.all("maya", superseded=True)}
    run = rt.apply(lab, "maya", now=later, expected=[r.id for r in shown])
    after = {r.id for r in lab.facts.all("maya", superseded=True)}
    assert before - after == {r.id for r in shown} == {r.id for r in run.removed}
    assert after == {ids["You have a dog called Rex."]}, "the pinned fact survives"
    audited = [a for a in lab.audit.query("maya", actions=["fact_delete"])]
    assert {a.target for a in audited} == {r.id for r in shown}
    history = fact_history(lab.facts, "maya", ids["You play the cello."]).versions
    assert history[-1].cause == f"retention policy (run {run.id})"


def test_a_run_is_undone_exactly_within_its_grace_period_and_refused_after(lab):
    ids = _facts(lab)
    rt.set_policy(lab, "maya", rt.RetentionPolicy(max_age_days=30, grace_days=7))
    stored = {r.id: (r.text, r.metadata) for r in lab.facts.all("maya")}
    run = rt.apply(lab, "maya", now=time.time() + 40 * DAY)
    assert lab.facts.all("maya") == []
    assert rt.undo(lab, "maya", run.id) == len(ids)
    assert {r.id: (r.text, r.metadata) for r in lab.facts.all("maya")} == stored, "text and provenance back"
    with pytest.raises(InputError, match="no retention run"):
        rt.undo(lab, "maya", run.id)
    again = rt.apply(lab, "maya", now=time.time() + 40 * DAY)
    with pytest.raises(InputError, match="grace period ended"):
        rt.undo(lab, "maya", again.id, now=time.time() + 60 * DAY)


def test_apply_refuses_when_memory_changed_since_the_preview(lab):
    ids = _facts(lab)
    rt.set_policy(lab, "maya", rt.RetentionPolicy(max_age_days=30))
    later = time.time() + 40 * DAY
    shown = [r.id for r in rt.preview(lab, "maya", now=later)]
    rt.pin(lab, "maya", ids["You play the cello."])  # pinned in another tab after the preview
    with pytest.raises(InputError, match="changed since the preview"):
        rt.apply(lab, "maya", now=later, expected=shown)
    assert len(lab.facts.all("maya")) == 4, "nothing removed"


def test_idle_facts_are_summarised_then_forgotten(lab):
    _facts(lab)
    rt.set_policy(lab, "maya", rt.RetentionPolicy(max_idle_days=10, action="summarise"))
    run = rt.apply(lab, "maya", now=time.time() + 20 * DAY)
    assert {r.reason for r in run.removed} == {"idle"} and len(run.removed) == 4
    [kept] = lab.facts.all("maya")
    assert kept.id == run.summary_fact and kept.text.startswith("Earlier:")
    rt.undo(lab, "maya", run.id)
    assert len(lab.facts.all("maya")) == 4 and run.summary_fact not in {r.id for r in lab.facts.all("maya")}


def test_the_upkeep_worker_applies_a_due_policy_at_most_once_an_hour(lab):
    rt.set_policy(lab, "maya", rt.RetentionPolicy(max_age_days=0))  # everything said before now is past it
    first = lab.chat("maya", "s1", "I live in Berlin.", strategy="facts", wait_upkeep=True)
    [run] = rt.runs(lab, "maya")[0]
    assert [r.text for r in run.removed] == ["You live in Berlin."] and lab.facts.all("maya") == []
    outcome = json.loads(lab.redis.hget(lab.keys.session("maya", "s1").jobs, first.reply.id))
    assert outcome["retention"] == {"run": run.id, "removed": 1}, "the job's stored outcome names the run"
    lab.chat("maya", "s1", "I play the cello.", strategy="facts", wait_upkeep=True)
    assert [r.text for r in lab.facts.all("maya")] == ["You play the cello."], "not due again within the hour"


def test_a_damaged_policy_and_bad_input_give_clear_messages(lab, raw_redis):
    with pytest.raises(InputError, match="action"):
        rt.RetentionPolicy(max_age_days=3, action="shred")
    with pytest.raises(InputError, match="max_age_days"):
        rt.RetentionPolicy(max_age_days=-1)
    with pytest.raises(InputError, match="no fact"):
        rt.pin(lab, "maya", "nope")
    env = {"REDIS_URL": lab.settings.redis_url, "MEMLAB_DATA_DIR": str(lab.settings.data_dir)}
    raw_redis.set(lab.keys.user("maya").retention, b"\xff{garbage")
    assert_one_line_error(run_cli("retention", "preview", "--user", "maya", env=env), 4, "damaged")
    assert_one_line_error(run_cli("retention", "undo", "--user", "maya", "--run", "x", env=env), 2, "no retention run")


def test_the_cli_sets_previews_applies_and_undoes(lab):
    _facts(lab)
    env = {"REDIS_URL": lab.settings.redis_url, "MEMLAB_DATA_DIR": str(lab.settings.data_dir)}
    assert run_cli("retention", "set", "--user", "maya", "--max-age-days", "0", env=env).code == 0
    shown = run_cli("retention", "preview", "--user", "maya", "--json", env=env)
    assert shown.code == 0, shown.err
    ids = [r["id"] for r in json.loads(shown.out)["would_remove"]]
    assert len(ids) == 4
    done = run_cli("retention", "apply", "--user", "maya", "--expect", ",".join(ids), "--json", env=env)
    assert done.code == 0, done.err
    run = json.loads(done.out)
    assert sorted(r["id"] for r in run["removed"]) == sorted(ids) and lab.facts.all("maya") == []
    undone = run_cli("retention", "undo", "--user", "maya", "--run", run["id"], env=env)
    assert undone.code == 0 and "4 fact(s) back" in undone.out


@pytest.mark.usefixtures("app_env")
def test_the_vector_memory_page_previews_applies_and_undoes_a_policy_and_keeps_a_pin(lab):
    from .test_fact_edits import _open_vector_page

    ids = _facts(lab)
    rt.set_policy(lab, "maya", rt.RetentionPolicy(max_age_days=0))
    at = _open_vector_page()
    assert not at.exception, [e.value for e in at.exception]
    at.multiselect(key="ret_pins").set_value([ids["You play the cello."]]).run()
    assert rt.pins(lab, "maya") == {ids["You play the cello."]}
    assert any("removes 3 fact(s)" in m.value for m in at.markdown)
    at.button(key="FormSubmitter:retention_apply-Apply the policy now").click().run()
    assert len(lab.facts.all("maya")) == 4 and any("Tick the box" in w.value for w in at.warning)
    at.checkbox(key="ret_sure").check()  # in the form: sent with its submit
    at.button(key="FormSubmitter:retention_apply-Apply the policy now").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [r.text for r in lab.facts.all("maya")] == ["You play the cello."]
    [run] = rt.runs(lab, "maya")[0]
    at.button(key=f"ret_undo:{run.id}").click().run()
    assert len(lab.facts.all("maya")) == 4 and any("undone" in s.value for s in at.success)
