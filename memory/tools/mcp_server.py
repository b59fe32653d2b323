"""Memory Lab as an MCP server (the official ``mcp`` SDK): an agent's memory, kept and shown by the same engine.

``python -m memory mcp`` serves over stdio (the client starts it), ``--http
PORT`` over streamable HTTP (one server, many clients). The tools and
resources are thin: each calls ``agent_memory.py`` on the process's one
``MemoryLab``, so every write is the chat's own (Redis scripts, traces,
upkeep jobs, audit) and the dashboard shows it live.

Errors: a bad call (an id like ``alice\\n``, an empty or huge message, an
unknown strategy) is a tool result with ``isError`` and the engine's
message, as MCP asks for input errors a model can correct; a backend that is
down is the same, worded by the engine. Resources have no such result: a bad
id is a JSON-RPC "invalid params" error, a missing trace "not found". Tools
run in worker threads (the SDK's), so a slow call or a client that goes
away mid-call never stops the server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, ToolAnnotations
from pydantic import Field

from ..errors import InputError, MemoryLabError
from ..lab import MemoryLab
from ..strategies import STRATEGIES
from . import agent_memory

log = logging.getLogger(__name__)

T = TypeVar("T")
NAME = "memory-lab"
INSTRUCTIONS = (
    "Memory for your conversations, kept by Memory Lab. Per turn: get_context(user_id, session_id, message) "
    "stores the user's message and gives you the system prompt and messages to send your model; then "
    "remember(role='assistant', content=<your reply>, reply_to=<trace_id>) stores the reply with its trace. "
    "Ids are 1-64 letters, digits, '_', '.', '-'. Read a session with the transcript resource and a turn's "
    "context with the trace resource; Memory Lab's dashboard shows the same memory."
)
TRANSCRIPT_URI = "memlab://sessions/{user_id}/{session_id}/transcript"
TRACE_URI = "memlab://sessions/{user_id}/{session_id}/traces/{trace_id}"

Strategy = Annotated[str, Field(description="memory strategy", json_schema_extra={"enum": list(STRATEGIES)})]
Id = Annotated[str, Field(description="1-64 characters: letters, digits, '_', '.', '-'")]


def _tool(call: Callable[[], T]) -> T:
    """Run an engine call for a tool: its deliberate errors become an error result the model can read."""
    try:
        return call()
    except InputError as exc:
        raise ToolError(f"Invalid input: {exc}") from exc
    except MemoryLabError as exc:
        raise ToolError(f"{exc.title}: {exc}") from exc


def _resource(call: Callable[[], Any]) -> str:
    """Run an engine call for a resource, as JSON; a bad id is "invalid params", a backend failure a read error."""
    try:
        data = call()
    except InputError as exc:
        raise MCPError(INVALID_PARAMS, f"Invalid input: {exc}") from exc
    except MemoryLabError as exc:
        raise ResourceError(f"{exc.title}: {exc}") from exc
    if data is None:
        raise ResourceNotFoundError("no such trace in that session")
    return json.dumps(data, ensure_ascii=False)


def build_server(lab: MemoryLab) -> MCPServer:
    """The MCP server over ``lab``; the caller runs it (``serve``) or connects a client in process (tests)."""
    from .. import __version__

    server: MCPServer = MCPServer(NAME, instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")
    doc = agent_memory.ToolDoc()

    @server.tool(description=doc.remember, annotations=ToolAnnotations(idempotent_hint=True))
    def remember(
        user_id: Id,
        session_id: Id,
        role: Literal["user", "assistant"],
        content: str,
        reply_to: Annotated[str | None, Field(description="the trace_id get_context returned")] = None,
        message_id: Annotated[str | None, Field(description="your id for the message (a retry stores once)")] = None,
        model: Annotated[str | None, Field(description="the model that wrote an assistant message")] = None,
        strategy: Strategy = "hybrid",
    ) -> dict[str, Any]:
        return _tool(
            lambda: agent_memory.remember(
                lab, user_id, session_id, role, content, message_id, reply_to, model, strategy
            )
        )

    @server.tool(description=doc.get_context)
    def get_context(
        user_id: Id, session_id: Id, message: str, strategy: Strategy = "hybrid", message_id: Id | None = None
    ) -> dict[str, Any]:
        return _tool(lambda: agent_memory.build_context(lab, user_id, session_id, message, strategy, message_id))

    @server.tool(description=doc.search_memory, annotations=ToolAnnotations(read_only_hint=True))
    def search_memory(user_id: Id, query: str, k: int = 5) -> dict[str, Any]:
        return {"results": _tool(lambda: agent_memory.search(lab, user_id, query, k))}

    @server.tool(description=doc.list_memory, annotations=ToolAnnotations(read_only_hint=True))
    def list_memory(what: Literal["users", "sessions", "facts"], user_id: Id | None = None) -> dict[str, Any]:
        return {what: _tool(lambda: agent_memory.list_memory(lab, what, user_id))}

    @server.tool(description=doc.forget, annotations=ToolAnnotations(destructive_hint=True))
    def forget(user_id: Id, session_id: Id | None = None, fact_id: str | None = None) -> dict[str, Any]:
        return _tool(lambda: agent_memory.forget(lab, user_id, session_id, fact_id))

    @server.resource(TRANSCRIPT_URI, description="a session's messages, oldest first", mime_type="application/json")
    def transcript(user_id: str, session_id: str) -> str:
        return _resource(lambda: agent_memory.transcript(lab, user_id, session_id))

    @server.resource(TRACE_URI, description="what a turn's model was sent, and why", mime_type="application/json")
    def trace(user_id: str, session_id: str, trace_id: str) -> str:
        return _resource(lambda: agent_memory.trace(lab, user_id, session_id, trace_id))

    return server


def serve(lab: MemoryLab, http_port: int | None = None, host: str = "127.0.0.1") -> None:
    """Serve until the client closes stdin (stdio) or the process is stopped (HTTP: ``http://HOST:PORT/mcp``)."""
    server = build_server(lab)
    if http_port is None:
        server.run("stdio")
        return
    if not 1 <= http_port <= 65535:
        raise InputError(f"--http needs a port between 1 and 65535, got {http_port}")
    server.run("streamable-http", host=host, port=http_port)
