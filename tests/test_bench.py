"""`python -m memory bench --quick` runs end to end on its own servers and reports every section and target."""

from __future__ import annotations

import json

from .conftest import run_cli


def test_bench_quick_reports_every_section_and_target():
    run = run_cli("bench", "--quick", "--json", timeout=600)
    assert run.code == 0, run.err[-2000:]
    report = json.loads(run.out)
    sections = report["sections"]
    paths = {r["path"]: r for r in sections["turn"]["rows"]}
    assert len(paths) == 5 and paths["raw floor (one MULTI)"]["ratio"] == 1.0
    assert all(r["p50_us"] > 0 and r["round_trips"] >= 1 for r in paths.values())
    assert paths["Memory Lab turn (Turn.begin + finish, trace)"]["round_trips"] == 2
    rows = sections["facts_search"]["rows"]
    # The smaller user in a memory as many times smaller, then both users in the full collection.
    assert [(r["facts"], r["collection_rows"]) for r in rows] == [(200, 600), (200, 3000), (1000, 3000)]
    assert all(r["same_top5"].endswith("/10") for r in rows)
    assert set(sections["facts_search"]["growth"]) == set(sections["facts_search"]["growth_fixed_collection"])
    assert set(sections["facts_search"]["growth"]) == {"bare", "ours"}
    assert all(r["facts"] > 0 and r["facts_per_s"] > 0 for r in sections["ingest"].values())
    assert sections["episodes"]["turns"] == 60 and len(sections["episodes"]["per_turn_ms"]) == 3
    names = [t["name"] for t in report["targets"]]
    assert "buffer turn round trips" in names and "same top-5 as a full read" in names
    assert all(isinstance(t["met"], bool) for t in report["targets"])
    assert isinstance(report["all_met"], bool)


def test_bench_text_output_names_the_targets():
    run = run_cli("bench", "--quick", timeout=600)
    assert run.code == 0, run.err[-2000:]
    assert "Targets:" in run.out and "raw floor" in run.out and "Facts search" in run.out


def test_scans_run_numpy_blas_on_one_thread_and_restore_it():
    """A two-thread product leaves OpenBLAS's threads spinning against the next embedding (memory/backends/blas.py)."""
    from threadpoolctl import threadpool_info

    from memory.backends import blas

    def blas_threads() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    assert before, "numpy has no BLAS library threadpoolctl can see"
    with blas.one_thread():
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before
