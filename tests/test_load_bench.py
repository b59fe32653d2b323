"""`bench --load` and `bench --pages` run end to end at tiny sizes and print their ratios with the targets marked.

Their timings are never checked here (benchmarks, not tests, judge speed): only that every section ran and
every target line is there.
"""

from __future__ import annotations

import json
import shutil

import pytest

from .conftest import run_cli


def test_load_bench_quick_reports_every_section_and_target(tmp_path):
    plot = tmp_path / "backlog.svg"
    run = run_cli("bench", "--load", "--quick", "--json", "--plot", str(plot), timeout=900)
    assert run.code == 0, run.err[-2000:]
    report = json.loads(run.out)
    embedded = report["embedded"]
    assert embedded["single_hybrid"]["turns"] > 0
    assert set(embedded["runs"]) == {"buffer", "hybrid"}
    for r in embedded["runs"].values():
        assert r["turns"] > 0 and r["reply_p99_ms"] >= r["reply_p50_ms"] > 0
        assert r["jobs_done"] > 0 and r["lag_p95_ms"] >= r["lag_p50_ms"] > 0  # every job's outcome was read
        assert r["backlog"] and all(n >= 0 for _, n in r["backlog"])
    servers = report["servers"]
    assert set(servers["runs"]) == {"hybrid, 1 worker(s)", "hybrid, 2 worker(s)"}
    assert all(r["turns"] > 0 and r["jobs_done"] > 0 for r in servers["runs"].values())
    assert [d["workers"] for d in servers["drain"]] == [1, 2] and all(d["jobs"] > 0 for d in servers["drain"])
    long = report["long"]
    assert set(long["long_sessions"]["rows"]) == {"buffer", "summary", "facts", "episodic", "hybrid"}
    assert long["session_list"]["sessions"] == 100
    assert set(long["long_message"]) == {"buffer", "summary", "facts", "episodic", "hybrid"}
    names = [t["name"] for t in report["targets"]]
    assert "2 workers / 1, upkeep throughput" in names and "listing 100 sessions" in names
    assert sum("turn 300 / turn 20" in n for n in names) == 10
    assert all(isinstance(t["met"], bool) for t in report["targets"])
    assert plot.read_text().startswith("<svg") and "polyline" in plot.read_text()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed (`make test` installs it)")
def test_page_bench_quick_prints_its_ratios():
    pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    run = run_cli("bench", "--pages", "--quick", timeout=900)
    assert run.code == 0, run.err[-2000:]
    assert "Enter → reply rendered: floor" in run.out and "Targets:" in run.out
    for line in ("Enter → reply rendered / (floor's + engine's own turn)", "page change to Chat playground / floor's"):
        assert line in run.out
    assert "fresh tab on Compare strategies" in run.out
    assert all(line.lstrip()[0] in "✓✗" for line in run.out.split("Targets:")[1].strip().splitlines())
