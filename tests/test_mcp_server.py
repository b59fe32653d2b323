"""The MCP server (`python -m memory mcp`), driven by the official SDK's client over stdio and streamable HTTP.

Every server here is a real process on real backends (the test Redis, an
embedded or server Chroma); clients are the SDK's ``Client``. Attacks: bad
ids, huge and empty arguments, wrong types, garbage JSON-RPC, two clients
writing one session, a client that goes away mid-call, a server killed with
SIGKILL mid-call.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from memory.backends.redis_server import free_port

from .conftest import kill_pid

ROOT = Path(__file__).resolve().parent.parent


def server_env(settings: Any, **extra: str) -> dict[str, str]:
    env = {**os.environ, "MEMLAB_DATA_DIR": str(settings.data_dir), "REDIS_URL": settings.redis_url}
    if settings.chroma_host:
        env.update(CHROMA_HOST=settings.chroma_host, CHROMA_PORT=str(settings.chroma_port))
        env["CHROMA_DATABASE"] = settings.chroma_database
    return {**env, **extra}


def stdio(env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "memory", "mcp"], env=env, cwd=str(ROOT))


@contextmanager
def http_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """`python -m memory mcp --http PORT` on a free loopback port; yields the MCP URL, stops it by pid."""
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "memory", "mcp", "--http", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/mcp", timeout=1)
            except urllib.error.HTTPError:
                break  # it answers (a GET without a session is refused): it is up
            except OSError:
                assert proc.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "the MCP server did not come up"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/mcp"
        assert proc.poll() is None, "the server is still running after every attack: " + log.read_text()[-2000:]
    finally:
        kill_pid(proc.pid)
        proc.wait(10)


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    """A tool call that must succeed; its structured result."""
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def refused(client: Client, tool: str, **args: Any) -> str:
    """A tool call that must come back as an MCP error result; its message."""
    result = await client.call_tool(tool, args)
    assert result.is_error, f"{tool}({args}) was accepted: {result.structured_content}"
    return result.content[0].text


async def agent_turn(client: Client, user: str, session: str, text: str, reply: str, strategy: str = "facts") -> dict:
    """What an agent does per turn: get the context, ask its model (here: a fixed reply), remember the reply."""
    context = await call(client, "get_context", user_id=user, session_id=session, message=text, strategy=strategy)
    stored = await call(
        client,
        "remember",
        user_id=user,
        session_id=session,
        role="assistant",
        content=reply,
        reply_to=context["trace_id"],
        model="agent-model-1",
    )
    return {"context": context, "stored": stored}


async def read_json(client: Client, uri: str) -> dict[str, Any]:
    result = await client.read_resource(uri)
    return json.loads(result.contents[0].text)


@pytest.fixture()
def http_url(settings, tmp_path) -> Iterator[str]:
    with http_server(server_env(settings, MEMLAB_MAX_MESSAGE_CHARS="5000"), tmp_path / "mcp.log") as url:
        yield url


def test_an_agent_turn_over_http_is_a_chat_turn_with_its_trace(http_url, lab):
    async def main() -> None:
        async with Client(http_url) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == {"remember", "get_context", "search_memory", "list_memory", "forget"}
            first = await agent_turn(client, "alice", "s1", "My name is Alice and I live in Lima.", "Hi Alice!")
            assert first["stored"] == {
                "message_id": first["stored"]["trace_id"],
                "stored": True,
                "trace_id": first["stored"]["trace_id"],
                "upkeep": "queued",
            }
            second = await agent_turn(client, "alice", "s2", "Where do I live?", "In Lima.")
            assert "You live in Lima." in second["context"]["system_prompt"], "recalled in a new session"
            assert [r["kind"] for r in second["context"]["retrieved"]] == ["fact", "fact"]
            transcript = await read_json(client, "memlab://sessions/alice/s2/transcript")
            assert [(m["role"], m["content"]) for m in transcript["messages"]] == [
                ("user", "Where do I live?"),
                ("assistant", "In Lima."),
            ]
            trace = await read_json(client, f"memlab://sessions/alice/s2/traces/{second['stored']['trace_id']}")
            assert trace["llm"]["provider"] == "agent" and trace["llm"]["model_id"] == "agent-model-1"
            assert "You live in Lima." in trace["system_prompt"] and "llm.reply" in trace["timings_ms"]
            found = await call(client, "search_memory", user_id="alice", query="home town", k=3)
            assert "You live in Lima." in [r["text"] for r in found["results"]]  # beside s2's episode
            sessions = await call(client, "list_memory", what="sessions", user_id="alice")
            assert [s["session_id"] for s in sessions["sessions"]] == ["s2", "s1"]
            assert {"user_id": "alice"} in (await call(client, "list_memory", what="users"))["users"]

    anyio.run(main)
    # The engine's own readers (the dashboard's) see the turn as a chat turn: the trace under the reply.
    log = lab.sessions.log("alice", "s2").messages
    traces = dict(lab.sessions.traces("alice", "s2").items)
    assert list(traces) == [log[1].id] and log[1].model_id == "agent-model-1"
    assert lab.sessions.meta("alice", "s2")["strategy"] == "facts"


def test_a_reply_sent_twice_is_stored_once_and_a_lone_message_gets_its_facts(http_url, lab):
    async def main() -> None:
        async with Client(http_url) as client:
            context = await call(client, "get_context", user_id="bob", session_id="s1", message="Hello there.")
            args = dict(user_id="bob", session_id="s1", role="assistant", content="Hi!", reply_to=context["trace_id"])
            once = await call(client, "remember", **args)
            again = await call(client, "remember", **args)
            assert once["stored"] and not again["stored"] and again["message_id"] == once["message_id"]
            lone = dict(user_id="bob", session_id="s1", role="user", content="I work at Spotify.", message_id="m-1")
            assert (await call(client, "remember", **lone))["stored"]
            assert not (await call(client, "remember", **lone))["stored"]
            after = await call(client, "get_context", user_id="bob", session_id="s2", message="Where do I work?")
            assert "You work at Spotify." in after["system_prompt"]
            facts = (await call(client, "list_memory", what="facts", user_id="bob"))["facts"]
            assert [f["text"] for f in facts] == ["You work at Spotify."]
            gone = await call(client, "forget", user_id="bob", fact_id=facts[0]["fact_id"])
            assert gone["deleted"] == {"facts": 1}
            cleared = await call(client, "forget", user_id="bob", session_id="s1")
            assert cleared["forgot"] == "session" and cleared["errors"] == {}

    anyio.run(main)
    assert [m.content for m in lab.sessions.log("bob", "s1").messages] == []
    assert [m.content for m in lab.sessions.log("bob", "s2").messages] == ["Where do I work?"]


BAD_IDS = ["alice\n", "", "a" * 65, "../etc", "al ice", "\u0430lice", "-x", "x;DROP", "\x00"]


def test_bad_calls_are_mcp_errors_and_the_server_keeps_serving(http_url, lab):
    async def main() -> None:
        async with Client(http_url) as client:
            for bad in BAD_IDS:
                message = await refused(client, "remember", user_id=bad, session_id="s1", role="user", content="hi")
                assert "Invalid input: user id" in message, message
                message = await refused(client, "get_context", user_id="carol", session_id=bad, message="hi")
                assert "Invalid input: session id" in message, message
            huge = "x" * 5_001
            assert "5,001 characters; the limit is 5,000" in await refused(
                client, "remember", user_id="carol", session_id="s1", role="user", content=huge
            )
            assert "the message is empty" in await refused(
                client, "get_context", user_id="carol", session_id="s1", message="   "
            )
            megabytes = await client.call_tool("search_memory", {"user_id": "carol", "query": "q" * 4_000_000})
            assert megabytes.is_error, "a 4 MB argument is refused, not a crash"
            assert "unknown strategy 'tree'" in await refused(
                client, "get_context", user_id="carol", session_id="s1", message="hi", strategy="tree"
            )
            assert "role" in await refused(
                client, "remember", user_id="carol", session_id="s1", role="system", content="hi"
            )
            assert "k" in await refused(client, "search_memory", user_id="carol", query="q", k="five")
            assert "k must be between 1 and 50" in await refused(
                client, "search_memory", user_id="carol", query="q", k=10**9
            )
            assert "no context is waiting for a reply" in await refused(
                client, "remember", user_id="carol", session_id="s1", role="assistant", content="x", reply_to="nope"
            )
            assert "Invalid input: message id" in await refused(
                client, "remember", user_id="carol", session_id="s1", role="user", content="x", message_id="a\nb"
            )
            assert "needs a user_id" in await refused(client, "list_memory", what="facts")
            assert "has no fact" in await refused(client, "forget", user_id="carol", fact_id="no-such-fact")
            unknown = await client.call_tool("no_such_tool", {})
            assert unknown.is_error
            for uri in ["memlab://sessions/carol/s1/traces/nope", "memlab://sessions/al%0Aice/s1/transcript"]:
                with pytest.raises(MCPError):
                    await client.read_resource(uri)
            # after all of it, the same server still answers
            await agent_turn(client, "carol", "s1", "My name is Carol.", "Hello Carol.")

    anyio.run(main)
    assert [m.content for m in lab.sessions.log("carol", "s1").messages] == ["My name is Carol.", "Hello Carol."]
    assert lab.sessions.sessions("carol") != [] and not lab.sessions.log("carol", "s2").messages


def test_garbage_json_rpc_over_http_and_stdio_is_refused_and_the_server_lives(http_url, settings):
    for body in [
        b"{not json",
        b"[]",
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": 7}',
        b"\xff" * 64,
    ]:
        answer = httpx.post(
            http_url,
            content=body,
            headers={"content-type": "application/json", "accept": "application/json, text/event-stream"},
            timeout=10,
        )
        assert 400 <= answer.status_code < 500, (body, answer.status_code)

    async def still_serves() -> None:
        async with Client(http_url) as client:
            assert (await call(client, "list_memory", what="users"))["users"] is not None

    anyio.run(still_serves)

    proc = subprocess.Popen(
        [sys.executable, "-m", "memory", "mcp"],
        cwd=ROOT,
        env=server_env(settings),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        }
        proc.stdin.write(b"{garbage\n\xff\xfe\n[1, 2]\n" + json.dumps(init).encode() + b"\n")
        proc.stdin.flush()
        replies = []
        while not any(r.get("id") == 1 for r in replies):
            line = proc.stdout.readline()
            assert line, "the server closed its output instead of answering"
            replies.append(json.loads(line))
        assert next(r for r in replies if r.get("id") == 1)["result"]["serverInfo"]["name"] == "memory-lab"
    finally:
        proc.stdin.close()
        proc.wait(20)
        kill_pid(proc.pid)
    assert proc.returncode == 0, "the server ended cleanly when its client closed stdin"


def test_two_clients_write_the_same_session_at_once(http_url, lab):
    async def writer(name: str, n: int) -> list[str]:
        ids = []
        async with Client(http_url) as client:
            for i in range(n):
                stored = await call(
                    client, "remember", user_id="dora", session_id="s1", role="user", content=f"{name} says {i}."
                )
                ids.append(stored["message_id"])
            turn = await agent_turn(client, "dora", "s1", f"{name} asks.", f"{name} answered.", strategy="buffer")
            ids += [turn["context"]["trace_id"], turn["stored"]["message_id"]]
        return ids

    async def main() -> list[list[str]]:
        results: list[list[str]] = [[], []]

        async def run(slot: int, name: str) -> None:
            results[slot] = await writer(name, 8)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, 0, "ann")
            tg.start_soon(run, 1, "ben")
        return results

    ann, ben = anyio.run(main)
    log = lab.sessions.log("dora", "s1").messages
    assert sorted(m.id for m in log) == sorted(ann + ben), "every message once, none lost"
    for ids in (ann, ben):
        assert [m.id for m in log if m.id in ids] == ids, "each client's messages in its own order"
    assert len(dict(lab.sessions.traces("dora", "s1").items)) == 2, "one trace per agent turn"


def test_a_client_that_goes_away_mid_call_leaves_the_server_serving(settings, tmp_path, lab):
    env = server_env(settings, MEMLAB_UPKEEP_DELAY="3")
    with http_server(env, tmp_path / "mcp.log") as url:

        async def main() -> None:
            async with Client(url) as client:
                await call(client, "remember", user_id="eve", session_id="s1", role="user", content="I like tea.")
            # get_context in another session waits for that job (3 s; a session's own jobs are not waited for,
            # its messages are in its context already): leave in the middle
            with anyio.move_on_after(1.0) as scope:
                async with Client(url) as client:
                    await client.call_tool(
                        "get_context", {"user_id": "eve", "session_id": "s2", "message": "What do I like?"}
                    )
            assert scope.cancelled_caught, "the call was still running when the client left"
            async with Client(url) as other:
                after = await call(other, "get_context", user_id="eve", session_id="s3", message="What do I like?")
                assert "You like tea." in after["system_prompt"]

        anyio.run(main)
    said = [m.content for m in lab.sessions.log("eve", "s2").messages]
    assert said == ["What do I like?"], "the abandoned call still stored its message, once"


def _server_pids(data_dir: Path) -> list[int]:
    """Our MCP server processes for this data folder (children of this test, found through /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if cmdline[1:4] == [b"-m", b"memory", b"mcp"] and f"MEMLAB_DATA_DIR={data_dir}".encode() in environ:
            found.append(int(entry.name))
    return found


def test_a_server_killed_mid_call_loses_nothing_acknowledged(settings, lab):
    env = server_env(settings, MEMLAB_UPKEEP_DELAY="5")

    async def main() -> None:
        async with Client(stdio(env)) as client:
            done = await agent_turn(client, "finn", "s1", "My name is Finn.", "Hi Finn.")
            assert done["stored"]["stored"]
            [pid] = _server_pids(settings.data_dir)
            killed = []
            with pytest.raises(Exception):  # noqa: B017 - the SDK's error for a dead server is not ours to name
                with anyio.fail_after(30):
                    async with anyio.create_task_group() as tg:

                        async def kill_soon() -> None:
                            await anyio.sleep(1.0)
                            os.kill(pid, signal.SIGKILL)
                            killed.append(pid)

                        tg.start_soon(kill_soon)
                        await client.call_tool(  # another session's context waits for s1's job (5 s)
                            "get_context", {"user_id": "finn", "session_id": "s2", "message": "Who am I?"}
                        )
            assert killed == [pid], "the call failed because its server was killed in the middle of it"
        async with Client(stdio(env)) as client:  # a new server on the same memory
            transcript = await read_json(client, "memlab://sessions/finn/s1/transcript")
            said = [m["content"] for m in transcript["messages"]]
            assert said == ["My name is Finn.", "Hi Finn."], said
            later = lab.sessions.log("finn", "s2").messages
            assert [m.content for m in later] in ([], ["Who am I?"]), "the call in flight is stored once or not at all"

    anyio.run(main)
    assert not _server_pids(settings.data_dir), "no server left behind"


def test_an_agent_remembers_across_two_server_restarts_and_the_app_shows_its_turn(
    settings, shared_chroma_server, tmp_path
):
    """Done when: an SDK client session remembers and recalls across two restarts of the server, and the turn it
    made shows on the Chat and Vector memory pages of a running app (a `streamlit run` process, in Chromium)."""
    from dataclasses import replace

    from .browser_app import CHROMIUM, launch
    from .browser_app import idle as _idle
    from .browser_app import serve as _serve
    from .conftest import new_chroma_database

    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian package 'chromium'); `make test` installs it where it can")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    port, _ = shared_chroma_server
    shared = replace(settings, chroma_host="127.0.0.1", chroma_port=port, chroma_database=new_chroma_database(port))
    env = server_env(shared)
    app = _serve(env, tmp_path)
    url = next(app)  # the app runs while the agent works: what it shows is live
    try:

        async def sessions() -> str:
            async with Client(stdio(env)) as client:  # server 1
                first = await agent_turn(
                    client, "mia", "s1", "My name is Mia and I live in Porto.", "Nice to meet you, Mia.", "hybrid"
                )
            async with Client(stdio(env)) as client:  # server 2: recalls what server 1 stored
                second = await agent_turn(client, "mia", "s2", "Where do I live?", "In Porto.", "hybrid")
                assert "You live in Porto." in second["context"]["system_prompt"]
            async with Client(stdio(env)) as client:  # server 3: still all there
                found = await call(client, "search_memory", user_id="mia", query="Which city is home?", k=2)
                assert "You live in Porto." in [r["text"] for r in found["results"]]
                transcript = await read_json(client, "memlab://sessions/mia/s1/transcript")
                assert [m["content"] for m in transcript["messages"]] == [
                    "My name is Mia and I live in Porto.",
                    "Nice to meet you, Mia.",
                ]
            return str(first["stored"]["trace_id"])

        anyio.run(sessions)
        with sync_api.sync_playwright() as p:
            browser = launch(p)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url + "chat?user=mia&session=s1")
                page.get_by_test_id("stChatMessage").nth(1).wait_for(timeout=120_000)
                _idle(page)
                shown = page.get_by_test_id("stChatMessage").all_inner_texts()
                assert "My name is Mia and I live in Porto." in shown[0] and "Nice to meet you, Mia." in shown[1]
                page.get_by_text("What the model saw").first.click()
                page.get_by_test_id("stMetricValue").filter(has_text="agent").first.wait_for(timeout=60_000)
                page.goto(url + "vector_memory?user=mia&session=s1")
                page.locator("[data-testid=stDataFrame] td", has_text="You live in Porto.").first.wait_for(
                    state="attached", timeout=120_000
                )
            finally:
                browser.close()
    finally:
        app.close()
    assert not _server_pids(settings.data_dir), "every server ended with its client"
