"""A small local HTTP server speaking the Chat Completions API, for testing the real ``openai`` SDK.

A responder gets the request body and returns (status, payload): a completion
(``completion_body``), an error body, raw ``bytes`` sent as they are, or, for
a streamed request, a list of ``bytes`` lines sent as they are (to break the
stream on purpose).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], tuple[int, Any]]


def completion_body(text: str | None, model: str = "gpt-test", choices: bool = True) -> dict[str, Any]:
    message = {"role": "assistant", "content": text, "refusal": None}
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}] if choices else [],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def error_body(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def stream_lines(completion: dict[str, Any]) -> list[bytes]:
    """The server-sent events of ``completion``: its text in word-sized deltas, then a usage chunk, then [DONE]."""
    base = {k: completion[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    chunks: list[dict[str, Any]] = []
    if completion["choices"]:
        text = completion["choices"][0]["message"]["content"] or ""
        delta = {"role": "assistant", "content": ""}
        chunks.append(base | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        for piece in re.findall(r"\S+\s*", text):
            chunks.append(base | {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        chunks.append(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append(base | {"choices": [], "usage": completion["usage"]})
    return [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]


class CompletionsServer:
    def __init__(self, responder: Responder) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.streamed: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.requests.append(body)
                outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path.rstrip("/") != "/v1/chat/completions":
                    status, payload = 404, error_body(f"no route {self.path}", "not_found")
                else:
                    status, payload = responder(body)
                if body.get("stream") and status == 200 and not isinstance(payload, bytes):
                    self._stream(payload if isinstance(payload, list) else stream_lines(payload))
                    return
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, lines: list[bytes]) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                for line in lines:
                    self.wfile.write(line)
                    self.wfile.flush()
                outer.streamed.append(len(lines))
                self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> CompletionsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
