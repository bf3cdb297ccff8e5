"""A real local HTTP server speaking the OpenAI chat-completions protocol (streaming and not),
with switchable behaviours for the failure modes. Started in the test process, on a thread."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    """`mode`: ok | reasoning_content | think_tags | slow | garbage | http500 | hang | cut.
    `usage`: what the non-streaming answer reports; `stream_usage`: the final stream chunk's.
    `delay`: seconds before each streamed chunk. `finished` is set when a request's handler ends."""

    def __init__(self, *, mode: str = "ok", answer_pieces: list[str] | None = None,
                 reasoning_pieces: list[str] | None = None, delay: float = 0.0,
                 usage: dict | None = None, stream_usage: dict | None = None) -> None:
        self.mode = mode
        self.answer_pieces = answer_pieces or ["Loan applications above one million yuan ",
                                               "need approval by the credit committee. [1]"]
        self.reasoning_pieces = reasoning_pieces or ["The user asks who approves. ", "Source 1 says the committee."]
        self.delay = delay
        self.usage = usage or {"prompt_tokens": 11, "completion_tokens": 7}
        self.stream_usage = stream_usage or {"prompt_tokens": 42, "completion_tokens": 9}
        self.requests: list[dict] = []
        self.finished = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    url = base_url

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                try:
                    self._answer()
                finally:
                    fake.finished.set()

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                mode = fake.mode
                if mode == "http500":
                    self._send(500, {"error": {"message": "model overloaded"}})
                    return
                if mode == "hang":
                    time.sleep(5)
                    return
                if not body.get("stream"):
                    content = "".join(fake.answer_pieces)
                    message = {"role": "assistant", "content": content}
                    if mode == "reasoning_content":
                        message["reasoning_content"] = "".join(fake.reasoning_pieces)
                    if mode == "think_tags":
                        message["content"] = "<think>" + "".join(fake.reasoning_pieces) + "</think>" + content
                    self._send(200, {"id": "x", "object": "chat.completion", "choices": [
                        {"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": fake.usage})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                if mode == "garbage":
                    self.wfile.write(b"this is not an event stream\n\n")
                    self.wfile.flush()
                    return
                chunks = []
                if mode == "reasoning_content":
                    chunks += [{"reasoning_content": p} for p in fake.reasoning_pieces]
                if mode == "think_tags":
                    text = "<think>" + "".join(fake.reasoning_pieces) + "</think>"
                    chunks += [{"content": text[i:i + 5]} for i in range(0, len(text), 5)]
                chunks += [{"content": p} for p in fake.answer_pieces]
                for i, delta in enumerate(chunks):
                    if mode == "cut" and i == 1:
                        return  # the connection closes mid-stream, no [DONE]
                    if mode == "slow" and i == 1:
                        time.sleep(3)
                    if fake.delay:
                        time.sleep(fake.delay)
                    payload = {"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
                    try:
                        self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        return
                usage = {"id": "x", "choices": [], "usage": fake.stream_usage}
                try:
                    self.wfile.write(b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
