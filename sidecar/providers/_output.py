"""Responses in the ``gen_ai.output.messages`` shape: one assistant message per choice/candidate,
with its finish reason; streamed responses assembled from text deltas and tool-call argument deltas."""

from __future__ import annotations

from typing import Any

from sidecar.providers._media import Digest
from sidecar.providers._messages import (
    _d,
    _l,
    _responses_item,
    _s,
    anthropic_content,
    gemini_content,
    ollama_message,
    text,
    tool_call,
)

Message = dict[str, Any]


def _no_digest(raw: bytes) -> str:
    return ""


def _out(parts: list[dict[str, Any]], reason: Any, role: str = "assistant") -> Message:
    return {"role": role, "parts": parts, "finish_reason": reason if isinstance(reason, str) and reason else "stop"}


def _openai(body: dict[str, Any], digest: Digest) -> list[Message]:
    if body.get("object") == "response" or isinstance(body.get("output"), list):
        parts: list[dict[str, Any]] = []
        for item in _l(body.get("output")):
            m = _responses_item(item, digest)
            if m is not None:
                parts.extend(m["parts"])
        reason = "tool_call" if any(p["type"] == "tool_call" for p in parts) else body.get("status")
        return [_out(parts, reason)] if parts or reason else []
    out = []
    for c in _l(body.get("choices")):
        c = _d(c)
        m = _d(c.get("message"))
        parts = []
        if isinstance(m.get("content"), str) and m["content"]:
            parts.append(text(m["content"]))
        if isinstance(m.get("refusal"), str) and m["refusal"]:
            parts.append(text(m["refusal"]))
        if isinstance(c.get("text"), str):
            parts.append(text(c["text"]))
        for call in _l(m.get("tool_calls")):
            fn = _d(_d(call).get("function"))
            parts.append(tool_call(_d(call).get("id"), fn.get("name"), fn.get("arguments")))
        out.append(_out(parts, c.get("finish_reason")))
    return out


def _anthropic(body: dict[str, Any], digest: Digest) -> list[Message]:
    if not isinstance(body.get("content"), list):
        return []
    return [_out(anthropic_content(body["content"], digest), body.get("stop_reason"))]


def _gemini(body: dict[str, Any], digest: Digest) -> list[Message]:
    out = []
    for cand in _l(body.get("candidates")):
        cand = _d(cand)
        msg = gemini_content(cand.get("content"), digest)
        if isinstance(cand.get("output"), str):  # PaLM
            msg["parts"].append(text(cand["output"]))
        out.append(_out(msg["parts"], cand.get("finishReason")))
    return out


def _ollama(body: dict[str, Any], digest: Digest) -> list[Message]:
    if isinstance(body.get("message"), dict):
        return [_out(ollama_message(body["message"], digest)["parts"], body.get("done_reason"))]
    if isinstance(body.get("response"), str):
        return [_out([text(body["response"])], body.get("done_reason"))]
    return []


_RESPONSE = {"openai": _openai, "anthropic": _anthropic, "gemini": _gemini, "palm": _gemini, "ollama": _ollama}


def response_messages(api_format: str, body: Any, digest: Digest = _no_digest) -> list[Message]:
    fn = _RESPONSE.get(api_format)
    if fn is None or not isinstance(body, dict) or "error" in body:
        return []
    return fn(body, digest)


class _Choice:
    """One streamed choice: its text, its tool calls by index (arguments joined from deltas)."""

    def __init__(self) -> None:
        self.parts: list[dict[str, Any]] = []  # in arrival order; text and reasoning parts grow in place
        self.calls: dict[Any, dict[str, Any]] = {}
        self.reason: str | None = None

    def add_text(self, t: Any, kind: str = "text") -> None:
        if not isinstance(t, str) or not t:
            return
        last = self.parts[-1] if self.parts else None
        if last is not None and last["type"] == kind and "_call" not in last:
            last["content"] += t
        else:
            self.parts.append({"type": kind, "content": t})

    def call(self, key: Any, call_id: Any = None, name: Any = None, args: Any = None) -> None:
        c = self.calls.get(key)
        if c is None:
            c = {"type": "tool_call", "name": "", "_call": True, "_args": []}
            self.calls[key] = c
            self.parts.append(c)
        if _s(call_id):
            c["id"] = call_id
        if _s(name):
            c["name"] = name
        if isinstance(args, str):
            c["_args"].append(args)
        elif args is not None:
            c["_args"] = [args]

    def message(self) -> Message:
        parts = []
        for p in self.parts:
            if p.get("_call"):
                args = p["_args"]
                joined: Any = "".join(args) if all(isinstance(a, str) for a in args) else args[-1]
                parts.append(tool_call(p.get("id"), p["name"], joined if args else None))
            else:
                parts.append(p)
        reason = self.reason or ("tool_call" if self.calls else None)
        return _out(parts, reason)


class StreamMessages:
    """Folds a stream's events into ``gen_ai.output.messages``."""

    def __init__(self, api_format: str) -> None:
        self.api_format = api_format
        self._choices: dict[int, _Choice] = {}
        self._final: list[Message] | None = None  # a complete response carried by a final event

    def _c(self, index: Any) -> _Choice:
        i = index if isinstance(index, int) and 0 <= index < 128 else 0
        return self._choices.setdefault(i, _Choice())

    def messages(self) -> list[Message]:
        if self._final:
            return self._final
        return [self._choices[i].message() for i in sorted(self._choices)]

    def feed(self, obj: dict[str, Any]) -> None:
        getattr(self, "_" + self.api_format, self._none)(obj)

    def _none(self, obj: dict[str, Any]) -> None:
        return None

    def _openai(self, obj: dict[str, Any]) -> None:
        typ = obj.get("type")
        if isinstance(typ, str) and typ.startswith("response."):
            c = self._c(0)
            if typ == "response.output_text.delta":
                c.add_text(obj.get("delta"))
            elif typ == "response.output_item.added" and _d(obj.get("item")).get("type") == "function_call":
                item = obj["item"]
                c.call(item.get("id") or obj.get("output_index"), item.get("call_id"), item.get("name"))
            elif typ == "response.function_call_arguments.delta":
                c.call(obj.get("item_id") or obj.get("output_index"), args=obj.get("delta"))
            elif typ == "response.completed":
                final = _openai(_d(obj.get("response")), _no_digest)
                if final and final[0]["parts"]:
                    self._final = final
            return
        for choice in _l(obj.get("choices")):
            ch = _d(choice)
            c = self._c(ch.get("index"))
            delta = _d(ch.get("delta"))
            c.add_text(delta.get("content"))
            c.add_text(delta.get("refusal"))
            c.add_text(ch.get("text"))
            for call in _l(delta.get("tool_calls")):
                call = _d(call)
                fn = _d(call.get("function"))
                c.call(call.get("index", 0), call.get("id"), fn.get("name"), fn.get("arguments"))
            if isinstance(ch.get("finish_reason"), str):
                c.reason = ch["finish_reason"]

    def _anthropic(self, obj: dict[str, Any]) -> None:
        c = self._c(0)
        typ = obj.get("type")
        if typ == "content_block_start":
            block = _d(obj.get("content_block"))
            if block.get("type") in ("tool_use", "server_tool_use"):
                c.call(obj.get("index"), block.get("id"), block.get("name"))
            elif block.get("type") == "text":
                c.add_text(block.get("text"))
        elif typ == "content_block_delta":
            delta = _d(obj.get("delta"))
            if delta.get("type") == "input_json_delta":
                c.call(obj.get("index"), args=delta.get("partial_json"))
            elif delta.get("type") == "thinking_delta":
                c.add_text(delta.get("thinking"), "reasoning")
            else:
                c.add_text(delta.get("text"))
        elif typ == "message_delta":
            reason = _d(obj.get("delta")).get("stop_reason")
            if isinstance(reason, str):
                c.reason = reason

    def _gemini(self, obj: dict[str, Any]) -> None:
        for n, cand in enumerate(_l(obj.get("candidates"))):
            cand = _d(cand)
            c = self._c(cand.get("index", n))
            for p in _l(_d(cand.get("content")).get("parts")):
                p = _d(p)
                fc = _d(p.get("functionCall") or p.get("function_call"))
                if fc:
                    c.call(len(c.calls), fc.get("id"), fc.get("name"), fc.get("args"))
                elif isinstance(p.get("text"), str):
                    c.add_text(p["text"], "reasoning" if p.get("thought") is True else "text")
            if isinstance(cand.get("finishReason"), str):
                c.reason = cand["finishReason"]

    _palm = _gemini

    def _ollama(self, obj: dict[str, Any]) -> None:
        c = self._c(0)
        msg = _d(obj.get("message"))
        c.add_text(msg.get("thinking"), "reasoning")
        c.add_text(msg.get("content"))
        c.add_text(obj.get("response"))
        for call in _l(msg.get("tool_calls")):
            fn = _d(_d(call).get("function"))
            c.call(len(c.calls), _d(call).get("id"), fn.get("name"), fn.get("arguments"))
        if isinstance(obj.get("done_reason"), str):
            c.reason = obj["done_reason"]
