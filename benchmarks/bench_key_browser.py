"""Does the Redis key browser stay responsive as the database grows?

Starts a throwaway redis-server, fills it with 1,000 and then 100,000 session
keys (in the real key layout), and times what the Redis keys page does per
refresh: one page of keys (SCAN + two pipelines) and the live TTL column.
Prints the time per page at each size and their ratio; a ratio near 1 means
the page cost does not grow with the database (KEYS would grow ~100x).

    .venv/bin/python -m benchmarks.bench_key_browser
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import redis

from memory.backends.redis_server import EmbeddedRedis
from memory.inspection.key_browser import KeyInspector
from memory.keys import Keys


def fill(client: redis.Redis, keys: Keys, start: int, stop: int) -> None:
    with client.pipeline(transaction=False) as p:
        for i in range(start, stop):
            k = keys.session(f"user{i % 997}", f"s{i}")
            p.rpush(k.buffer, '{"v":1}')
            p.expire(k.buffer, 3600)
            if i % 5000 == 4999:
                p.execute()
        p.execute()


def time_page(inspector: KeyInspector, pattern: str, repeats: int = 15) -> tuple[float, int]:
    samples = []
    rows = 0
    for _ in range(repeats):
        t = time.perf_counter()
        page = inspector.scan_page(pattern, 0, 100)
        inspector.ttls([r.key for r in page.rows])
        samples.append(time.perf_counter() - t)
        rows = len(page.rows)
    return statistics.median(samples), rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        state = server.ensure_running()
        try:
            client = redis.Redis.from_url(state.url, decode_responses=True)
            keys = Keys("memlab")
            inspector = KeyInspector(client, keys)
            fill(client, keys, 0, 1_000)
            small, small_rows = time_page(inspector, "memlab:*")
            fill(client, keys, 1_000, 100_000)
            large, large_rows = time_page(inspector, "memlab:*")
            rare, rare_rows = time_page(inspector, "memlab:s:{user5:*", repeats=5)
            print("keys in db   pattern              rows   page + live TTLs (median)")
            print(f"{1_000:>10,}   memlab:*           {small_rows:>6}   {small * 1000:8.2f} ms")
            print(f"{client.dbsize():>10,}   memlab:*           {large_rows:>6}   {large * 1000:8.2f} ms")
            print(f"{client.dbsize():>10,}   one user's keys    {rare_rows:>6}   {rare * 1000:8.2f} ms")
            print(f"ratio 100k/1k (memlab:*): {large / small:.2f}  (keys grew {client.dbsize() / 1000:.0f}x)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
