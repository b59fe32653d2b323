"""An honest check on people nobody tuned on: four everyday conversations, asked in a new session per strategy.

The conversations (``everyday/conversations.json``) were written for this
check and are never used to change the method. Each person's turns are
chatted through the strategy (``MemoryLab.chat``, the upkeep of each turn
done before the next), then each question is asked in a new session — and,
for buffer and summary, which keep nothing across sessions, also in the
same session. A reply is right when it holds every expected word and none
of the rejected ones (case ignored). Runs on its own throwaway data folder
and embedded Redis; nothing of the user's is touched.

    python -m benchmarks.everyday_check [--strategies facts,hybrid] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from memory import STRATEGIES, MemoryLab, Settings

CONVERSATIONS = Path(__file__).parent / "everyday" / "conversations.json"
SAME_SESSION = ("buffer", "summary")


def right(reply: str, expect: list[str], reject: list[str]) -> bool:
    text = reply.lower()
    return all(e.lower() in text for e in expect) and not any(r.lower() in text for r in reject)


def run(lab: MemoryLab, strategies: list[str]) -> dict[str, Any]:
    people = json.loads(CONVERSATIONS.read_text())["people"]
    results: list[dict[str, Any]] = []
    for strategy in strategies:
        for person in people:
            user = f"everyday-{person['name']}-{strategy}"
            lab.forget_user(user)
            for text in person["tell"]:
                lab.chat(user, "s1", text, strategy=strategy, wait_upkeep=True)
            where = ["s2"] + (["s1"] if strategy in SAME_SESSION else [])
            for session in where:
                for ask in person["ask"]:
                    reply = lab.chat(user, session, ask["q"], strategy=strategy, wait_upkeep=True).reply
                    said = reply.content if reply else ""
                    results.append(
                        {
                            "strategy": strategy,
                            "person": person["name"],
                            "asked in": "new session" if session == "s2" else "same session",
                            "question": ask["q"],
                            "right": right(said, ask["expect"], ask.get("reject", [])),
                            "reply": said,
                        }
                    )
    summary: dict[str, dict[str, str]] = {}
    for strategy in strategies:
        for where in ("new session", "same session"):
            rows = [r for r in results if r["strategy"] == strategy and r["asked in"] == where]
            if rows:
                summary.setdefault(strategy, {})[where] = f"{sum(r['right'] for r in rows)} of {len(rows)}"
    return {"summary": summary, "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--json", action="store_true")
    a = parser.parse_args(argv)
    strategies = [s for s in a.strategies.split(",") if s]
    if any(s not in STRATEGIES for s in strategies):
        print(f"error: strategies are {', '.join(STRATEGIES)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="memlab-everyday-") as folder:
        settings = replace(Settings.from_env(), data_dir=Path(folder), redis_url=None, upkeep_mode="inline")
        lab = MemoryLab(settings)
        try:
            out = run(lab, strategies)
        finally:
            lab.close()
            if lab.embedded_redis is not None:
                lab.embedded_redis.stop()
    if a.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    for strategy, cells in out["summary"].items():
        print(f"{strategy:<10}" + "   ".join(f"{where}: {score}" for where, score in cells.items()))
    for r in out["results"]:
        if not r["right"]:
            print(f"  miss [{r['strategy']}, {r['asked in']}] {r['question']} -> {r['reply'][:140]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
