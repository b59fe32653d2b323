"""The Vector memory page through AppTest: a query's scores, edits and undo, Qdrant, why a memory was missed."""

from __future__ import annotations

import json

from .page_app import assert_clean, open_page


def test_vector_memory_query_shows_scores(app_env):
    at = open_page("pages/chat.py")
    at.selectbox(key="strategy").set_value("hybrid").run()
    at.chat_input[0].set_value("My name is Alice. I live in Berlin.").run()
    at.switch_page("pages/vector_memory.py").run()
    at.text_input(key="vec_query").set_value("which city do I live in?").run()
    assert_clean(at, "Vector memory")
    hits = next(df.value for df in at.dataframe if "cosine similarity" in df.value.columns)
    assert "You live in Berlin." in list(hits["text"])
    assert list(hits["cosine similarity"]) == sorted(hits["cosine similarity"], reverse=True)
    assert ((hits["cosine similarity"] + hits["cosine distance"] - 1).abs() < 1e-3).all()
    chart = json.loads(at.get("plotly_chart")[-1].proto.spec)
    names = [t.get("name") for t in chart["data"]]
    assert "query" in names and any(str(n).startswith("top ") for n in names), names


def test_vector_memory_edits_and_undoes_a_fact_and_exports(app_env, lab):
    lab.chat("alice", "s1", "I live in Berlin.", strategy="facts")
    at = open_page("pages/vector_memory.py")
    [fact] = lab.facts.all("alice")
    at.text_area(key=f"edit_fact_text:{fact.id}").set_value("The user lives in Berlin-Mitte.")
    at.button[[b.label for b in at.button].index("Save the edit")].click().run()
    assert not at.exception
    assert [r.text for r in lab.facts.all("alice")] == ["The user lives in Berlin-Mitte."]
    assert any("Edited" in s.value for s in at.success)
    at.button(key="undo_fact").click().run()
    assert [r.text for r in lab.facts.all("alice")] == ["You live in Berlin."]
    assert any(d.label.startswith("Download this user's memory") for d in at.get("download_button"))


def test_the_vector_memory_page_and_the_status_work_on_qdrant(app_env, monkeypatch):
    monkeypatch.setenv("MEMLAB_VECTOR_STORE", "qdrant")
    at = open_page("pages/chat.py")
    at.selectbox(key="strategy").set_value("hybrid").run()
    at.chat_input[0].set_value("My name is Alice. I live in Berlin.").run()
    at.switch_page("pages/vector_memory.py").run()
    at.text_input(key="vec_query").set_value("which city do I live in?").run()
    assert_clean(at, "Vector memory")
    assert any("in Qdrant (embedded)" in c.value for c in at.caption)
    hits = next(df.value for df in at.dataframe if "cosine similarity" in df.value.columns)
    assert "Berlin" in hits["text"].iloc[0] and 0 < hits["cosine similarity"].iloc[0] <= 1
    at.switch_page("app.py").run()
    backends = at.dataframe[0].value
    assert "Qdrant" in list(backends["backend"]) and set(backends["status"]) == {"up"}


def test_the_vector_page_says_why_a_memory_was_not_retrieved(app_env):
    at = open_page("pages/chat.py")
    at.selectbox(key="strategy").set_value("facts").run()
    for text in ["My name is Alice.", "I live in Oslo.", "My sister is called Maja."]:
        at.chat_input[0].set_value(text).run()
    at.switch_page("pages/vector_memory.py").run()
    at.text_input(key="vec_query").set_value("Where do I live?").run()
    at.number_input(key="vec_k").set_value(1).run()
    at.text_input(key="why_vector").set_value("Your sister is called Maja.").run()
    assert_clean(at, "Vector memory")
    said = [w.value for w in at.warning]
    assert any(w.startswith("**Ranked below the cut-off.**") for w in said), said
    table = next(df.value for df in at.dataframe if "fused score" in df.value.columns)
    assert table["rank"].iloc[0] > 1 and table["fused score"].iloc[0] < table["fused score"].iloc[1]
    at.text_input(key="why_vector").set_value("The user's dog is called Rex.").run()
    assert any("Never stored" in w.value for w in at.warning)
