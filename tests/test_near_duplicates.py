"""Near-duplicate facts listed side by side, and a merge that keeps one wording and can be undone."""

from __future__ import annotations

import json

import pytest

from memory.errors import InputError
from memory.timeline.duplicates import merge, near_duplicates
from memory.timeline.versions import fact_history

from .conftest import run_cli


def _facts(lab):
    # Written by id (an import): the store merges a repeat only when it is said in a turn.
    for i, text in enumerate(["You have two cats.", "You have 2 cats at home.", "You play the cello."]):
        lab.facts.restore("maya", f"f{i}" + "0" * 31, text, None, event="ADD")
    return ["f0" + "0" * 31, "f1" + "0" * 31, "f2" + "0" * 31]


def test_two_wordings_of_one_fact_are_listed_and_merged_and_the_merge_undone(lab):
    cats, cats2, cello = _facts(lab)
    pairs = near_duplicates(lab.facts, "maya")
    assert [{p.left_id, p.right_id} for p in pairs] == [{cats, cats2}], [(p.left, p.right, p.similarity) for p in pairs]
    merge(lab.facts, "maya", cats, cats2)
    assert sorted(r.text for r in lab.facts.all("maya")) == ["You have two cats.", "You play the cello."]
    assert fact_history(lab.facts, "maya", cats2).versions[-1].cause == f"merged by hand into fact {cats}"
    assert near_duplicates(lab.facts, "maya") == []
    lab.facts.undo_last("maya")
    assert len(lab.facts.all("maya")) == 3
    with pytest.raises(InputError, match="itself"):
        merge(lab.facts, "maya", cats, cats)
    with pytest.raises(InputError, match="no current fact"):
        merge(lab.facts, "maya", cats, "nope")
    assert len(lab.facts.all("maya")) == 3


def test_the_cli_lists_pairs_and_merges_with_a_new_wording(lab):
    cats, cats2, _ = _facts(lab)
    env = {"REDIS_URL": lab.settings.redis_url, "MEMLAB_DATA_DIR": str(lab.settings.data_dir)}
    listed = run_cli("facts", "duplicates", "--user", "maya", "--json", env=env)
    assert listed.code == 0 and len(json.loads(listed.out)["pairs"]) == 1, listed.err
    merged = run_cli(
        "facts", "merge", cats, "--drop", cats2, "--text", "You have two cats at home.", "--user", "maya", env=env
    )
    assert merged.code == 0, merged.err
    assert sorted(r.text for r in lab.facts.all("maya")) == ["You have two cats at home.", "You play the cello."]


@pytest.mark.usefixtures("app_env")
def test_the_vector_memory_page_shows_a_pair_side_by_side_and_merges_it(lab):
    from .test_fact_edits import _open_vector_page

    cats, cats2, _ = _facts(lab)
    at = _open_vector_page()
    assert not at.exception, [e.value for e in at.exception]
    at.button(key=f"vec_merge:{cats2}:{cats}").click().run()
    assert not at.exception
    assert sorted(r.text for r in lab.facts.all("maya")) == ["You have 2 cats at home.", "You play the cello."]
