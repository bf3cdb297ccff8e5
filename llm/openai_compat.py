"""OpenAI-compatible chat completions over HTTP (vLLM, SGLang, Ollama, DeepSeek's API).

Standard library only (http.client), so every failure is ours to word: a server that is down,
slow (connect timeout, then a timeout between streamed lines, then an overall deadline) or that
answers garbage raises BackendError with a message for the user; nothing hangs.
Reasoning arrives as `reasoning_content` (DeepSeek's API, vLLM's reasoning parser) or as
`<think>…</think>` inside the content (R1 served raw): both go to the reasoning channel.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from .base import BackendError, Completion, Delta, Usage
from .reasoning import ThinkSplitter
from .tokens import token_counter

MAX_LINE_BYTES = 1 << 20


class OpenAICompatibleBackend:
    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "",
        context_window: int = 8192,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        total_timeout: float = 600.0,
        tokenizer_path: str = "",
        name: str = "",
    ) -> None:
        parts = urlsplit(base_url.strip().rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendError(_("The model endpoint's base URL must start with http:// or https://."))
        self.parts = parts
        self.model = model
        self.api_key = api_key
        self.context_window = context_window
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.total_timeout = total_timeout
        self.name = name or f"{model} @ {parts.hostname}"
        self.count_tokens = token_counter(tokenizer_path)
        self.last_usage = Usage()

    # --- HTTP --------------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        host, port = self.parts.hostname, self.parts.port
        if self.parts.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self.connect_timeout, context=ssl.create_default_context())
        return http.client.HTTPConnection(host, port, timeout=self.connect_timeout)

    def _post(self, path: str, payload: dict):
        conn = self._connection()
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream, application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            conn.connect()
            conn.sock.settimeout(self.read_timeout)
            conn.request("POST", self.parts.path + path, body=json.dumps(payload).encode(), headers=headers)
            response = conn.getresponse()
        except (TimeoutError, socket.timeout):
            conn.close()
            raise BackendError(_("The model server did not answer in time.")) from None
        except (ConnectionError, OSError, http.client.HTTPException) as exc:
            conn.close()
            raise BackendError(_("The model server cannot be reached (%(error)s).") % {"error": type(exc).__name__}) from None
        if response.status != 200:
            body = response.read(2000).decode("utf-8", "replace")
            conn.close()
            detail = body
            try:
                detail = json.loads(body).get("error", {}).get("message") or body
            except (ValueError, AttributeError):
                pass
            raise BackendError(
                _("The model server answered HTTP %(status)s: %(detail)s") % {"status": response.status, "detail": str(detail)[:300]}
            )
        return conn, response

    def _payload(self, messages, *, max_tokens, temperature, stream):
        payload = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature,
                   "stream": stream}
        if stream:
            payload["stream_options"] = {"include_usage": True}
        return payload

    # --- interface ---------------------------------------------------------------------------

    def stream(self, messages, *, max_tokens=512, temperature=0.0, stop_event: threading.Event | None = None) -> Iterator[Delta]:
        self.last_usage = Usage()
        conn, response = self._post("/chat/completions", self._payload(messages, max_tokens=max_tokens,
                                                                        temperature=temperature, stream=True))
        deadline = time.monotonic() + self.total_timeout
        splitter = ThinkSplitter()
        produced = []
        try:
            ctype = response.getheader("Content-Type", "")
            if "text/event-stream" not in ctype:
                # Some servers ignore stream=true: accept a whole JSON completion.
                completion = self._parse_completion(response.read(MAX_LINE_BYTES * 4))
                if completion.reasoning:
                    yield Delta("reasoning", completion.reasoning)
                for delta in splitter.feed(completion.text):
                    yield delta
                yield from splitter.flush()
                self.last_usage = completion.usage
                return
            got_done = False
            while True:
                if stop_event is not None and stop_event.is_set():
                    return
                if time.monotonic() > deadline:
                    raise BackendError(_("The model server took too long to finish the answer."))
                try:
                    line = response.readline(MAX_LINE_BYTES)
                except (TimeoutError, socket.timeout):
                    raise BackendError(_("The model server stopped sending the answer (timeout).")) from None
                except (ConnectionError, OSError, http.client.HTTPException):
                    raise BackendError(_("The connection to the model server broke off.")) from None
                if not line:
                    break
                line = line.strip()
                if not line or line.startswith(b":"):
                    continue
                if not line.startswith(b"data:"):
                    if line.startswith((b"event:", b"id:", b"retry:")):
                        continue
                    raise BackendError(_("The model server sent data that is not a chat completion stream."))
                data = line[5:].strip()
                if data == b"[DONE]":
                    got_done = True
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise BackendError(_("The model server sent data that is not a chat completion stream.")) from None
                if not isinstance(chunk, dict):
                    raise BackendError(_("The model server sent data that is not a chat completion stream."))
                if chunk.get("error"):
                    message = chunk["error"].get("message") if isinstance(chunk["error"], dict) else chunk["error"]
                    raise BackendError(_("The model server reported an error: %(detail)s") % {"detail": str(message)[:300]})
                if isinstance(chunk.get("usage"), dict):
                    self.last_usage = Usage(
                        prompt_tokens=int(chunk["usage"].get("prompt_tokens") or 0),
                        completion_tokens=int(chunk["usage"].get("completion_tokens") or 0),
                    )
                choices = chunk.get("choices")
                if choices is None:
                    continue
                if not isinstance(choices, list):
                    raise BackendError(_("The model server sent data that is not a chat completion stream."))
                for choice in choices:
                    delta = (choice or {}).get("delta") or {}
                    if not isinstance(delta, dict):
                        raise BackendError(_("The model server sent data that is not a chat completion stream."))
                    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                    if reasoning:
                        yield Delta("reasoning", str(reasoning))
                    content = delta.get("content")
                    if content:
                        produced.append(content)
                        yield from splitter.feed(str(content))
            yield from splitter.flush()
            if not got_done and not produced and not self.last_usage.completion_tokens:
                raise BackendError(_("The model server closed the stream without an answer."))
            if not self.last_usage.completion_tokens:
                self.last_usage.completion_tokens = self.count_tokens("".join(produced))
            if not self.last_usage.prompt_tokens:
                self.last_usage.prompt_tokens = sum(self.count_tokens(m["content"]) for m in messages)
        finally:
            conn.close()

    def _parse_completion(self, body: bytes) -> Completion:
        try:
            data = json.loads(body)
            message = data["choices"][0]["message"]
            text = message.get("content") or ""
            reasoning = message.get("reasoning_content") or ""
            usage = data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise BackendError(_("The model server answered with something that is not a chat completion.")) from None
        return Completion(
            text=str(text), reasoning=str(reasoning),
            usage=Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
            finish_reason=data["choices"][0].get("finish_reason") or "stop",
        )

    def complete(self, messages, *, max_tokens=512, temperature=0.0) -> Completion:
        conn, response = self._post("/chat/completions", self._payload(messages, max_tokens=max_tokens,
                                                                        temperature=temperature, stream=False))
        try:
            body = response.read(MAX_LINE_BYTES * 4)
        except (TimeoutError, socket.timeout):
            raise BackendError(_("The model server did not answer in time.")) from None
        finally:
            conn.close()
        completion = self._parse_completion(body)
        if not completion.reasoning and "<think>" in completion.text:
            splitter = ThinkSplitter()
            parts = list(splitter.feed(completion.text)) + list(splitter.flush())
            completion.reasoning = "".join(d.text for d in parts if d.kind == "reasoning")
            completion.text = "".join(d.text for d in parts if d.kind == "answer")
        self.last_usage = completion.usage
        return completion
