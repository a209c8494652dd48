"""A small, real OpenAI-compatible HTTP server on 127.0.0.1 that plays scripted replies.

It stands in for the LLM endpoint (the edge of the system), never for our code: the product talks to
it over HTTP with its real client. Each test scripts what the next requests get:

    llm.script(Reply("李芳[1]。"), Reply(mode="hang"))

Modes: "ok" (the text, streamed in small chunks when the request asks for a stream), "hang" (accepts,
then says nothing for `hang_seconds`), "hang_after" (streams the first half, then stalls), "drip"
(streams one chunk every `delay` seconds), "error" (HTTP 500), "empty" (a well-formed, empty answer),
"garbage" (bytes that are not the OpenAI wire format). `text` may be a function of the request body,
so a reply can cite whichever passage the prompt numbered. Every request body is recorded in
`requests`, so a test can read the prompt the model was given.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PASSAGE_RE = re.compile(r'<passage n="(\d+)" title="[^"]*">\n(.*?)\n</passage>', re.S)


@dataclass
class Reply:
    text: str | Callable[[dict], str] = ""
    mode: str = "ok"
    chunk_chars: int = 3
    delay: float = 0.0  # between chunks


def prompt_of(body: dict) -> str:
    """The user turn of a recorded request (where our answerer puts the passages and the question)."""
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] in ("user", "human"))


def passages_of(body: dict) -> dict[int, str]:
    return {int(n): text for n, text in PASSAGE_RE.findall(prompt_of(body))}


class FakeLLM:
    def __init__(self, hang_seconds: float = 30.0, model: str = "fake-model"):
        self.hang_seconds = hang_seconds
        self.model = model
        self.requests: list[dict] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, *replies: Reply | str) -> None:
        with self._lock:
            self._replies.extend(r if isinstance(r, Reply) else Reply(r) for r in replies)

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self.requests.clear()

    def _next(self, body: dict) -> Reply:
        with self._lock:
            self.requests.append(body)
            return self._replies.popleft() if self._replies else Reply("（没有脚本化的回复）")

    def start(self) -> FakeLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": fake.model, "object": "model", "created": 0,
                                                                 "owned_by": "fake"}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._json(400, {"error": {"message": "bad json"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": "not found"}})
                    return
                fake._serve(self, body)

            def _json(self, status: int, obj: dict) -> None:
                data = json.dumps(obj, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes handlers that are "hanging"
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- serving -------------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler, body: dict) -> None:
        reply = self._next(body)
        text = reply.text(body) if callable(reply.text) else reply.text
        if reply.mode == "hang":
            self._stop.wait(self.hang_seconds)
            return
        if reply.mode == "error":
            h._json(500, {"error": {"message": "the fake model crashed", "type": "server_error"}})
            return
        if reply.mode == "empty":
            text = ""
        if not body.get("stream"):
            if reply.mode == "garbage":
                self._raw(h, "application/json", b"<html>502 Bad Gateway\x00\xff")
                return
            h._json(200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            })
            return
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.end_headers()  # HTTP/1.0: the body ends when the connection closes
        try:
            if reply.mode == "garbage":
                h.wfile.write(b"data: {this is not json\n\ndata: \xff\xfe garbage\n\n")
                h.wfile.flush()
                return
            self._event(h, {"role": "assistant", "content": ""})
            pieces = [text[i : i + reply.chunk_chars] for i in range(0, len(text), reply.chunk_chars)]
            for i, piece in enumerate(pieces):
                if reply.mode == "hang_after" and i == len(pieces) // 2:
                    self._stop.wait(self.hang_seconds)
                    return
                if reply.delay or reply.mode == "drip":
                    if self._stop.wait(reply.delay or 0.5):
                        return
                self._event(h, {"content": piece})
            self._event(h, {}, finish="stop")
            h.wfile.write(b"data: [DONE]\n\n")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout): fine
            pass

    def _event(self, h, delta: dict, finish: str | None = None) -> None:
        chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                 "model": self.model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        h.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
        h.wfile.flush()

    @staticmethod
    def _raw(h, content_type: str, data: bytes) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


def llm_service(base, llm: FakeLLM, timeout: float = 2.0):
    """A service that answers with the LLM answerer (talking to `llm`) over `base`'s index, read-only."""
    from qa.components import build_answerer
    from qa.service import QAService

    settings = base.settings.model_copy(update={
        "answerer": "llm", "llm_base_url": llm.url, "llm_model": llm.model, "llm_timeout": timeout,
    })
    return QAService(settings, base.index, base.retriever, build_answerer("llm", settings, base.index))
