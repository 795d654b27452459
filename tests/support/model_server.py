"""A loopback server that speaks the OpenAI, Anthropic, Gemini (and PaLM) and Ollama wire formats.

It is the "real server" the SDKs talk to in tests and in ``make demo``: real sockets,
HTTP/1.1 keep-alive, chunked SSE/NDJSON streams, gzip, and error replies with the
providers' own error bodies and headers. Behaviour is chosen by the model name:

  error-400 / error-403 / error-429 / error-503   that status with the provider's error body
  broken-stream    two chunks, then the connection is cut
  slow-NNN         waits NNN ms before answering
  binary / plain   a non-JSON body (application/octet-stream / text/plain)
  gzip-*           a gzip-compressed body
Anything else: a normal answer that echoes the last user message. A request that offers tools and
does not end with a tool result is answered with a call of the first tool (``{"city": "Paris"}``;
streamed: its arguments in several deltas), on the OpenAI chat / Responses and Anthropic formats.

Run ``python tests/support/model_server.py [port]``; it prints its base URL.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_GEMINI = re.compile(r"/models/([^/:]+):(\w+)")

_ERRORS = {
    400: ("invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT", "Invalid value for 'messages'."),
    403: ("permission_denied", "permission_error", "PERMISSION_DENIED", "Your API key does not have access."),
    429: ("rate_limit_exceeded", "rate_limit_error", "RESOURCE_EXHAUSTED", "Rate limit reached for requests."),
    503: ("server_overloaded", "overloaded_error", "UNAVAILABLE", "The server is overloaded."),
}


TOOL_ARGS = {"city": "Paris", "unit": "celsius"}


def _tool_name(body: dict[str, Any]) -> str | None:
    """The first offered tool's name, unless the conversation ends with a tool result."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools or not isinstance(tools[0], dict):
        return None
    last = (body.get("messages") or body.get("input") or [None])[-1]
    if isinstance(last, dict):
        content = last.get("content")
        if last.get("role") == "tool" or last.get("type") == "function_call_output" or (
                isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result"
                                                  for b in content)):
            return None
    fn = tools[0].get("function") if isinstance(tools[0].get("function"), dict) else tools[0]
    return str(fn.get("name", "tool"))


def _arg_pieces() -> list[str]:
    text = json.dumps(TOOL_ARGS)
    return [text[i:i + 7] for i in range(0, len(text), 7)]


def _last_user_text(body: dict[str, Any]) -> str:
    for key in ("messages", "input"):
        msgs = body.get(key)
        if isinstance(msgs, str):
            return msgs
        if isinstance(msgs, list) and msgs:
            content = msgs[-1].get("content") if isinstance(msgs[-1], dict) else None
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    for c in body.get("contents") or ():
        for p in c.get("parts") or ():
            if isinstance(p, dict) and "text" in p:
                return str(p["text"])
    prompt = body.get("prompt")
    if isinstance(prompt, dict):
        return str(prompt.get("text", ""))
    if isinstance(prompt, str):
        return prompt
    return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small SSE writes must not wait for delayed ACKs
    server_version = "loopback-model-server/1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing ------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("content-length") or 0)
        data = self.rfile.read(n) if n else b""
        if self.headers.get("content-encoding", "").lower() == "gzip":
            data = gzip.decompress(data)
        return data

    def _send(self, status: int, body: bytes, ctype: str = "application/json", headers: dict[str, str] | None = None,
              gz: bool = False) -> None:
        if gz:
            body = gzip.compress(body)
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        if gz:
            self.send_header("content-encoding", "gzip")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None, gz: bool = False) -> None:
        self._send(status, json.dumps(obj).encode(), headers=headers, gz=gz)

    def _stream(self, events: Iterator[bytes], ctype: str, broken: bool = False) -> None:
        self.send_response(200)
        self.send_header("content-type", ctype)
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        for i, ev in enumerate(events):
            if broken and i == 2:
                self.wfile.flush()
                self.connection.shutdown(2)
                self.close_connection = True
                return
            self.wfile.write(f"{len(ev):x}\r\n".encode() + ev + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _error(self, fmt: str, status: int) -> None:
        otype, atype, gstatus, msg = _ERRORS.get(status, ("error", "api_error", "UNKNOWN", "error"))
        headers = {"x-request-id": "req_test"}
        if status in (429, 503):
            headers["retry-after"] = "1"
        if status == 429:
            headers["x-ratelimit-remaining-requests"] = "0"
        if fmt == "anthropic":
            body: Any = {"type": "error", "error": {"type": atype, "message": msg}}
        elif fmt == "gemini":
            body = {"error": {"code": status, "message": msg, "status": gstatus}}
        elif fmt == "ollama":
            body = {"error": msg}
        else:
            body = {"error": {"message": msg, "type": otype, "param": None, "code": otype}}
        self._json(status, body, headers)

    # -- routing ---------------------------------------------------------------

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        path = self.path.split("?", 1)[0]
        m = _GEMINI.search(path)
        model = m.group(1) if m else str(body.get("model", ""))
        fmt = ("anthropic" if path.endswith("/v1/messages") else "gemini" if m
               else "ollama" if path.startswith("/api/") else "openai")
        if model.startswith("slow-"):
            time.sleep(int(model.split("-")[1]) / 1000)
        if model.startswith("error-"):
            return self._error(fmt, int(model.split("-")[1]))
        if model == "binary":
            return self._send(200, bytes(range(256)) * 4, "application/octet-stream")
        if model == "plain":
            return self._send(200, b"plain text answer \xff\xfe not utf-8", "text/plain")
        text = "Echo: " + _last_user_text(body)[:300]
        broken = model == "broken-stream"
        gz = model.startswith("gzip-")
        if fmt == "anthropic":
            return self._anthropic(body, model, text, broken, gz)
        if fmt == "gemini":
            assert m is not None
            return self._gemini(m.group(2), model, text, broken, gz)
        if fmt == "ollama":
            return self._ollama(path, body, model, text, broken)
        return self._openai(path, body, model, text, broken, gz)

    def _openai(self, path: str, body: dict[str, Any], model: str, text: str, broken: bool, gz: bool) -> None:
        usage = {"prompt_tokens": 12, "completion_tokens": len(text.split()), "total_tokens": 12 + len(text.split()),
                 "prompt_tokens_details": {"cached_tokens": 4}}
        if path.endswith("/embeddings"):
            return self._json(200, {"object": "list", "model": model, "data": [
                {"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
                "usage": {"prompt_tokens": 5, "total_tokens": 5}})
        tool = _tool_name(body)
        if path.endswith("/responses") and tool:
            return self._json(200, {"id": "resp_2", "object": "response", "model": model, "status": "completed",
                                    "output": [{"type": "function_call", "id": "fc_1", "call_id": "call_r1",
                                                "name": tool, "arguments": json.dumps(TOOL_ARGS)}],
                                    "usage": {"input_tokens": 20, "output_tokens": 9, "total_tokens": 29}})
        if path.endswith("/responses"):
            return self._json(200, {"id": "resp_1", "object": "response", "model": model, "status": "completed",
                                    "output": [{"type": "message", "role": "assistant", "content": [
                                        {"type": "output_text", "text": text}]}],
                                    "usage": {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}})
        completion = path.endswith("/completions") and not path.endswith("/chat/completions")
        if tool:
            return self._openai_tool(body, model, tool, usage, broken)
        if body.get("stream"):
            def events() -> Iterator[bytes]:
                words = text.split(" ")
                for i, w in enumerate(words):
                    delta = {"content": w + (" " if i < len(words) - 1 else "")}
                    choice = {"index": 0, "delta": delta, "finish_reason": None}
                    yield b"data: " + json.dumps({"id": "chatcmpl-s1", "object": "chat.completion.chunk",
                                                  "created": 1, "model": model + "-2024",
                                                  "choices": [choice]}).encode() + b"\n\n"
                stop = {"index": 0, "delta": {}, "finish_reason": "stop"}
                yield b"data: " + json.dumps({"id": "chatcmpl-s1", "object": "chat.completion.chunk", "created": 1,
                                              "model": model + "-2024", "choices": [stop]}).encode() + b"\n\n"
                yield b"data: " + json.dumps({"id": "chatcmpl-s1", "object": "chat.completion.chunk", "created": 1,
                                              "model": model + "-2024", "choices": [],
                                              "usage": usage}).encode() + b"\n\n"
                yield b"data: [DONE]\n\n"
            return self._stream(events(), "text/event-stream", broken)
        if completion:
            choice: dict[str, Any] = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
        else:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        return self._json(200, {"id": "chatcmpl-1", "object": "text_completion" if completion else "chat.completion",
                                "created": 1, "model": model + "-2024", "choices": [choice], "usage": usage},
                          {"x-request-id": "req_1"}, gz=gz)

    def _openai_tool(self, body: dict[str, Any], model: str, tool: str, usage: dict[str, Any],
                     broken: bool) -> None:
        head = {"id": "chatcmpl-t1", "object": "chat.completion.chunk", "created": 1, "model": model + "-2024"}
        if body.get("stream"):
            def events() -> Iterator[bytes]:
                first = {"index": 0, "id": "call_s1", "type": "function", "function": {"name": tool, "arguments": ""}}
                yield b"data: " + json.dumps({**head, "choices": [{"index": 0, "delta": {
                    "role": "assistant", "content": None, "tool_calls": [first]}, "finish_reason": None}]}).encode() \
                    + b"\n\n"
                for piece in _arg_pieces():
                    delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                    yield b"data: " + json.dumps({**head, "choices": [{"index": 0, "delta": delta,
                                                                       "finish_reason": None}]}).encode() + b"\n\n"
                yield b"data: " + json.dumps({**head, "choices": [{"index": 0, "delta": {},
                                                                   "finish_reason": "tool_calls"}]}).encode() + b"\n\n"
                yield b"data: " + json.dumps({**head, "choices": [], "usage": usage}).encode() + b"\n\n"
                yield b"data: [DONE]\n\n"
            return self._stream(events(), "text/event-stream", broken)
        call = {"id": "call_1", "type": "function", "function": {"name": tool, "arguments": json.dumps(TOOL_ARGS)}}
        choice = {"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                  "finish_reason": "tool_calls"}
        return self._json(200, {"id": "chatcmpl-t1", "object": "chat.completion", "created": 1,
                                "model": model + "-2024", "choices": [choice], "usage": usage})

    def _anthropic_tool(self, body: dict[str, Any], model: str, tool: str, broken: bool) -> None:
        usage = {"input_tokens": 30, "output_tokens": 12}
        if body.get("stream"):
            def events() -> Iterator[bytes]:
                def ev(name: str, obj: Any) -> bytes:
                    return f"event: {name}\ndata: {json.dumps(obj)}\n\n".encode()
                yield ev("message_start", {"type": "message_start", "message": {
                    "id": "msg_t1", "type": "message", "role": "assistant", "model": model, "content": [],
                    "stop_reason": None, "usage": {"input_tokens": 30, "output_tokens": 1}}})
                yield ev("content_block_start", {"type": "content_block_start", "index": 0,
                                                 "content_block": {"type": "text", "text": ""}})
                yield ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                 "delta": {"type": "text_delta", "text": "Checking."}})
                yield ev("content_block_stop", {"type": "content_block_stop", "index": 0})
                yield ev("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
                    "type": "tool_use", "id": "toolu_s1", "name": tool, "input": {}}})
                for piece in _arg_pieces():
                    yield ev("content_block_delta", {"type": "content_block_delta", "index": 1,
                                                     "delta": {"type": "input_json_delta", "partial_json": piece}})
                yield ev("content_block_stop", {"type": "content_block_stop", "index": 1})
                yield ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                                           "usage": {"output_tokens": 12}})
                yield ev("message_stop", {"type": "message_stop"})
            return self._stream(events(), "text/event-stream", broken)
        return self._json(200, {"id": "msg_t1", "type": "message", "role": "assistant", "model": model,
                                "content": [{"type": "text", "text": "Checking."},
                                            {"type": "tool_use", "id": "toolu_1", "name": tool, "input": TOOL_ARGS}],
                                "stop_reason": "tool_use", "stop_sequence": None, "usage": usage})

    def _anthropic(self, body: dict[str, Any], model: str, text: str, broken: bool, gz: bool) -> None:
        tool = _tool_name(body)
        if tool:
            return self._anthropic_tool(body, model, tool, broken)
        if body.get("stream"):
            def events() -> Iterator[bytes]:
                def ev(name: str, obj: Any) -> bytes:
                    return f"event: {name}\ndata: {json.dumps(obj)}\n\n".encode()
                yield ev("message_start", {"type": "message_start", "message": {
                    "id": "msg_s1", "type": "message", "role": "assistant", "model": model, "content": [],
                    "stop_reason": None, "usage": {"input_tokens": 15, "output_tokens": 1,
                                                   "cache_read_input_tokens": 2}}})
                yield ev("content_block_start", {"type": "content_block_start", "index": 0,
                                                 "content_block": {"type": "text", "text": ""}})
                for w in text.split(" "):
                    yield ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                     "delta": {"type": "text_delta", "text": w + " "}})
                yield ev("content_block_stop", {"type": "content_block_stop", "index": 0})
                yield ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                           "usage": {"output_tokens": len(text.split())}})
                yield ev("message_stop", {"type": "message_stop"})
            return self._stream(events(), "text/event-stream", broken)
        return self._json(200, {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                                "stop_sequence": None, "usage": {"input_tokens": 15, "output_tokens": 4,
                                                                  "cache_creation_input_tokens": 3}}, gz=gz)

    def _gemini(self, method: str, model: str, text: str, broken: bool, gz: bool) -> None:
        usage = {"promptTokenCount": 9, "candidatesTokenCount": 5, "totalTokenCount": 14}
        if method == "generateText":  # PaLM
            return self._json(200, {"candidates": [{"output": text, "safetyRatings": [
                {"category": "HARM_CATEGORY_DEROGATORY", "probability": "NEGLIGIBLE"}]}]})
        if method == "streamGenerateContent":
            def events() -> Iterator[bytes]:
                words = text.split(" ")
                for i, w in enumerate(words):
                    chunk: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": [{"text": w + " "}]},
                                                              "index": 0}], "modelVersion": model + "-001",
                                             "responseId": "gem-s1"}
                    if i == len(words) - 1:
                        chunk["candidates"][0]["finishReason"] = "STOP"
                        chunk["usageMetadata"] = usage
                    yield b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n"
            return self._stream(events(), "text/event-stream", broken)
        return self._json(200, {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                                "finishReason": "STOP", "index": 0}],
                                "usageMetadata": usage, "modelVersion": model + "-001", "responseId": "gem-1"}, gz=gz)

    def _ollama(self, path: str, body: dict[str, Any], model: str, text: str, broken: bool) -> None:
        chat = path.endswith("/api/chat")
        final = {"model": model, "created_at": "2026-01-01T00:00:00Z", "done": True, "done_reason": "stop",
                 "prompt_eval_count": 11, "eval_count": len(text.split())}
        if body.get("stream", True):
            def events() -> Iterator[bytes]:
                for w in text.split(" "):
                    part: dict[str, Any] = {"model": model, "done": False}
                    if chat:
                        part["message"] = {"role": "assistant", "content": w + " "}
                    else:
                        part["response"] = w + " "
                    yield json.dumps(part).encode() + b"\n"
                last = dict(final)
                last["message" if chat else "response"] = {"role": "assistant", "content": ""} if chat else ""
                yield json.dumps(last).encode() + b"\n"
            return self._stream(events(), "application/x-ndjson", broken)
        out = dict(final)
        out["message" if chat else "response"] = {"role": "assistant", "content": text} if chat else text
        return self._json(200, out)


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def serve(port: int = 0) -> Iterator[str]:
    """Run the server on 127.0.0.1 in a thread; yields its base URL."""
    server = ModelServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    srv = ModelServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
    print(f"http://127.0.0.1:{srv.server_address[1]}", flush=True)
    srv.serve_forever()
