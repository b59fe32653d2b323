"""What the Recall Lab says about a question comes from the engine: the parts of a score and why a miss missed."""

from __future__ import annotations

import numpy as np
import pytest

from memory.eval.recall import why_evidence
from memory.retrieval import RETRIEVERS, Candidate, CandidateIndex
from memory.retrieval.ranking import SESSION_PARTS, TURN_PARTS

CANDS = [
    Candidate("t1", "Ana: I took a pottery class on 3 May 2023.", "s1", 0, "Ana"),
    Candidate("t2", "Ben: What did you make there?", "s1", 1, "Ben"),
    Candidate("t3", "Ana: A bowl, blue.", "s2", 0, "Ana"),
]


@pytest.mark.parametrize("retriever", RETRIEVERS)
def test_every_part_of_a_score_has_the_name_a_table_shows(retriever):
    index = CandidateIndex(CANDS)
    dense = np.array([0.4, 0.2, 0.6])
    turn = index.components("What did Ana make in May 2023?", dense, retriever)
    session = index.group_components("What did Ana make in May 2023?", dense, retriever)
    assert sorted(turn) == sorted(TURN_PARTS) and sorted(session) == sorted(SESSION_PARTS)
    assert list(TURN_PARTS)[-1] == list(SESSION_PARTS)[-1] == "score"  # the sum comes last in a table


def test_a_miss_is_said_by_its_rank_and_the_score_it_had_to_beat():
    assert why_evidence(None, 5) == "not stored (not in the indexed turns)"
    assert why_evidence(5, 5) == "retrieved (rank 5 ≤ 5)"
    assert why_evidence(7, 5) == "ranked below the cut-off: 7 > k = 5"
    assert (
        why_evidence(7, 5, 0.41234, 0.5) == "ranked below the cut-off: 7 > k = 5 (score 0.412 against 0.500 at rank 5)"
    )
