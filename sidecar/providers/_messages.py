"""Request bodies in the OpenTelemetry GenAI message shapes.

``gen_ai.input.messages`` (role + typed parts), ``gen_ai.system_instructions`` (parts) and
``gen_ai.tool.definitions``, from OpenAI chat / completions / responses, Anthropic, Gemini and
Ollama bodies. Parts: ``text``, ``tool_call`` (id, name, arguments), ``tool_call_response``
(id, response), ``reasoning``, ``blob`` (inline media: type, size, keyed hash, never the bytes),
``uri`` and ``file`` (a provider file id). Pure and tolerant: odd shapes give fewer parts.
"""

from __future__ import annotations

import json
from typing import Any

from sidecar.providers._media import Digest, blob_part, modality, url_or_blob

Part = dict[str, Any]
Message = dict[str, Any]
_CHAT_OPS = ("chat", "text_completion", "generate_content", None)


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _s(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def text(t: str) -> Part:
    return {"type": "text", "content": t}


def arguments(v: Any) -> Any:
    """Tool-call arguments as an object when they are JSON text (as OpenAI sends them)."""
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def tool_call(call_id: Any, name: Any, args: Any) -> Part:
    part: Part = {"type": "tool_call", "name": _s(name) or ""}
    if _s(call_id):
        part["id"] = call_id
    if args is not None:
        part["arguments"] = arguments(args)
    return part


def tool_response(call_id: Any, response: Any) -> Part:
    part: Part = {"type": "tool_call_response", "response": response}
    if _s(call_id):
        part["id"] = call_id
    return part


def _msg(role: str, parts: list[Part]) -> Message:
    return {"role": role, "parts": parts}


# ---------------------------------------------------------------- OpenAI


def _openai_part(p: Any, digest: Digest) -> Part | None:
    if isinstance(p, str):
        return text(p)
    p = _d(p)
    typ = p.get("type")
    if typ in ("text", "input_text", "output_text") and isinstance(p.get("text"), str):
        return text(p["text"])
    if typ == "refusal" and isinstance(p.get("refusal"), str):
        return text(p["refusal"])
    if typ in ("image_url", "input_image"):
        url = p.get("image_url")
        url = _d(url).get("url") if isinstance(url, dict) else url
        if isinstance(url, str):
            return url_or_blob(url, None, digest)
        if _s(p.get("file_id")):
            return {"type": "file", "modality": "image", "file_id": p["file_id"]}
    if typ == "input_audio":
        audio = _d(p.get("input_audio"))
        if isinstance(audio.get("data"), str):
            fmt = _s(audio.get("format")) or "wav"
            return blob_part(audio["data"], f"audio/{fmt}", digest)
    if typ in ("file", "input_file"):
        f = _d(p.get("file")) or p
        if isinstance(f.get("file_data"), str):
            return url_or_blob(f["file_data"], "application/octet-stream", digest, "file")
        if _s(f.get("file_id")):
            return {"type": "file", "modality": "file", "file_id": f["file_id"]}
        if _s(f.get("file_url")):
            return url_or_blob(f["file_url"], None, digest, "file")
    return {"type": typ} if isinstance(typ, str) and typ else None


def _openai_content(content: Any, digest: Digest) -> list[Part]:
    if isinstance(content, str):
        return [text(content)] if content else []
    return [q for p in _l(content) if (q := _openai_part(p, digest)) is not None]


def _openai_chat_message(m: dict[str, Any], digest: Digest) -> Message | None:
    role = _s(m.get("role")) or "user"
    if role == "tool" or role == "function":
        return _msg("tool", [tool_response(m.get("tool_call_id") or m.get("name"), m.get("content"))])
    parts = _openai_content(m.get("content"), digest)
    for call in _l(m.get("tool_calls")):
        fn = _d(_d(call).get("function"))
        parts.append(tool_call(_d(call).get("id"), fn.get("name"), fn.get("arguments")))
    fc = _d(m.get("function_call"))
    if fc:
        parts.append(tool_call(None, fc.get("name"), fc.get("arguments")))
    if role == "developer":
        role = "system"
    return _msg(role, parts)


def _responses_item(item: Any, digest: Digest) -> Message | None:
    if isinstance(item, str):
        return _msg("user", [text(item)])
    it = _d(item)
    typ = it.get("type")
    if typ == "function_call":
        return _msg("assistant", [tool_call(it.get("call_id"), it.get("name"), it.get("arguments"))])
    if typ == "function_call_output":
        return _msg("tool", [tool_response(it.get("call_id"), it.get("output"))])
    if typ == "reasoning":
        parts = [{"type": "reasoning", "content": s["text"]} for s in _l(it.get("summary"))
                 if isinstance(_d(s).get("text"), str)]
        return _msg("assistant", parts)
    if "role" in it or typ == "message":
        role = _s(it.get("role")) or "user"
        return _msg("system" if role == "developer" else role, _openai_content(it.get("content"), digest))
    return None


def _openai_tools(tools: Any) -> list[dict[str, Any]]:
    out = []
    for t in _l(tools):
        t = _d(t)
        fn = _d(t.get("function")) or t  # chat nests the function; responses does not
        typ = _s(t.get("type")) or "function"
        name = _s(fn.get("name")) or typ
        d: dict[str, Any] = {"type": typ, "name": name}
        if isinstance(fn.get("description"), str):
            d["description"] = fn["description"]
        params = fn.get("parameters", fn.get("input_schema"))
        if params is not None:
            d["parameters"] = params
        out.append(d)
    return out


def openai_request(body: dict[str, Any], digest: Digest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(body.get("messages"), list):
        msgs = [m for x in body["messages"] if (m := _openai_chat_message(_d(x), digest)) is not None]
        out["input_messages"] = msgs
    elif "input" in body and ("instructions" in body or "conversation" in body or "previous_response_id" in body
                              or not isinstance(body.get("input"), list) or _looks_like_items(body["input"])):
        inp = body["input"]
        items = inp if isinstance(inp, list) else [inp]
        out["input_messages"] = [m for x in items if (m := _responses_item(x, digest)) is not None]
        if isinstance(body.get("instructions"), str) and body["instructions"]:
            out["system_instructions"] = [text(body["instructions"])]
    elif isinstance(body.get("prompt"), (str, list)):
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        out["input_messages"] = [_msg("user", [text(p)]) for p in prompts if isinstance(p, str)]
    tools = _openai_tools(body.get("tools") or body.get("functions"))
    if tools:
        out["tool_definitions"] = tools
    conv = body.get("conversation")
    conv_id = _s(conv) or _s(_d(conv).get("id")) or _s(body.get("previous_response_id"))
    if conv_id:
        out["conversation_id"] = conv_id
    return out


def _looks_like_items(v: list[Any]) -> bool:
    return any(isinstance(x, dict) and ("role" in x or "type" in x) for x in v)


# ---------------------------------------------------------------- Anthropic


def anthropic_block(b: Any, digest: Digest) -> Part | None:
    if isinstance(b, str):
        return text(b)
    b = _d(b)
    typ = b.get("type")
    if typ == "text" and isinstance(b.get("text"), str):
        return text(b["text"])
    if typ in ("thinking", "redacted_thinking"):
        return {"type": "reasoning", "content": _s(b.get("thinking")) or ""}
    if typ == "tool_use" or typ == "server_tool_use":
        return tool_call(b.get("id"), b.get("name"), b.get("input"))
    if typ == "tool_result":
        content = b.get("content")
        if isinstance(content, list):
            content = [q for x in content if (q := anthropic_block(x, digest)) is not None]
        return tool_response(b.get("tool_use_id"), content)
    if typ in ("image", "document"):
        src = _d(b.get("source"))
        mime = _s(src.get("media_type"))
        if src.get("type") == "base64" and isinstance(src.get("data"), str):
            return blob_part(src["data"], mime, digest)
        if src.get("type") == "url" and isinstance(src.get("url"), str):
            return url_or_blob(src["url"], mime, digest, "image" if typ == "image" else "file")
        if src.get("type") == "file" and _s(src.get("file_id")):
            return {"type": "file", "modality": modality(mime) if mime else typ, "file_id": src["file_id"]}
        if src.get("type") == "text" and isinstance(src.get("data"), str):
            return text(src["data"])
    return {"type": typ} if isinstance(typ, str) and typ else None


def anthropic_content(content: Any, digest: Digest) -> list[Part]:
    if isinstance(content, str):
        return [text(content)]
    return [q for b in _l(content) if (q := anthropic_block(b, digest)) is not None]


def anthropic_request(body: dict[str, Any], digest: Digest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    msgs = []
    for m in _l(body.get("messages")):
        m = _d(m)
        parts = anthropic_content(m.get("content"), digest)
        role = _s(m.get("role")) or "user"
        if parts and all(p["type"] == "tool_call_response" for p in parts):
            role = "tool"
        msgs.append(_msg(role, parts))
    out["input_messages"] = msgs
    system = anthropic_content(body.get("system"), digest) if body.get("system") else []
    if system:
        out["system_instructions"] = system
    tools = _openai_tools(body.get("tools"))
    if tools:
        for t, src in zip(tools, _l(body.get("tools")), strict=False):
            if "type" not in _d(src) or _d(src).get("type") == "custom":
                t["type"] = "function"
        out["tool_definitions"] = tools
    return out


# ---------------------------------------------------------------- Gemini


def gemini_part(p: Any, digest: Digest) -> Part | None:
    p = _d(p)
    if isinstance(p.get("text"), str):
        if p.get("thought") is True:
            return {"type": "reasoning", "content": p["text"]}
        return text(p["text"])
    inline = _d(p.get("inlineData") or p.get("inline_data"))
    if isinstance(inline.get("data"), str):
        return blob_part(inline["data"], _s(inline.get("mimeType") or inline.get("mime_type")), digest)
    fdata = _d(p.get("fileData") or p.get("file_data"))
    if isinstance(fdata.get("fileUri") or fdata.get("file_uri"), str):
        mime = _s(fdata.get("mimeType") or fdata.get("mime_type"))
        return url_or_blob(fdata.get("fileUri") or fdata["file_uri"], mime, digest, "file")
    call = _d(p.get("functionCall") or p.get("function_call"))
    if call:
        return tool_call(call.get("id"), call.get("name"), call.get("args"))
    resp = _d(p.get("functionResponse") or p.get("function_response"))
    if resp:
        return tool_response(resp.get("id") or resp.get("name"), resp.get("response"))
    return None


def gemini_content(content: Any, digest: Digest) -> Message:
    c = _d(content)
    parts = [q for p in _l(c.get("parts")) if (q := gemini_part(p, digest)) is not None]
    role = {"model": "assistant", "function": "tool"}.get(_s(c.get("role")) or "user", _s(c.get("role")) or "user")
    if parts and all(p["type"] == "tool_call_response" for p in parts):
        role = "tool"
    return _msg(role, parts)


def gemini_request(body: dict[str, Any], digest: Digest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    contents = body.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    out["input_messages"] = [gemini_content(c, digest) for c in _l(contents)]
    system = body.get("systemInstruction") or body.get("system_instruction")
    if system:
        parts = gemini_content(system, digest)["parts"] if isinstance(system, dict) else [text(str(system))]
        if parts:
            out["system_instructions"] = parts
    tools = []
    for t in _l(body.get("tools")):
        for fn in _l(_d(t).get("functionDeclarations") or _d(t).get("function_declarations")):
            fn = _d(fn)
            d: dict[str, Any] = {"type": "function", "name": _s(fn.get("name")) or ""}
            if isinstance(fn.get("description"), str):
                d["description"] = fn["description"]
            if fn.get("parameters") is not None:
                d["parameters"] = fn["parameters"]
            tools.append(d)
        for key in _d(t):
            if key not in ("functionDeclarations", "function_declarations"):
                tools.append({"type": key, "name": key})  # built-in tools: googleSearch, codeExecution, ...
    if tools:
        out["tool_definitions"] = tools
    return out


# ---------------------------------------------------------------- Ollama


def ollama_message(m: dict[str, Any], digest: Digest) -> Message:
    role = _s(m.get("role")) or "user"
    if role == "tool":
        return _msg("tool", [tool_response(m.get("tool_call_id") or m.get("tool_name"), m.get("content"))])
    parts: list[Part] = [text(m["content"])] if isinstance(m.get("content"), str) and m["content"] else []
    if isinstance(m.get("thinking"), str) and m["thinking"]:
        parts.insert(0, {"type": "reasoning", "content": m["thinking"]})
    for img in _l(m.get("images")):
        if isinstance(img, str):
            parts.append(blob_part(img, None, digest) | {"modality": "image"})
    for call in _l(m.get("tool_calls")):
        fn = _d(_d(call).get("function"))
        parts.append(tool_call(_d(call).get("id"), fn.get("name"), fn.get("arguments")))
    return _msg(role, parts)


def ollama_request(body: dict[str, Any], digest: Digest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(body.get("messages"), list):
        out["input_messages"] = [ollama_message(_d(m), digest) for m in body["messages"]]
    elif isinstance(body.get("prompt"), str):
        out["input_messages"] = [ollama_message({"role": "user", "content": body["prompt"],
                                                 "images": body.get("images")}, digest)]
    if isinstance(body.get("system"), str) and body["system"]:
        out["system_instructions"] = [text(body["system"])]
    tools = _openai_tools(body.get("tools"))
    if tools:
        out["tool_definitions"] = tools
    return out


_REQUEST = {"openai": openai_request, "anthropic": anthropic_request, "gemini": gemini_request,
            "ollama": ollama_request}


def request_messages(api_format: str, operation: str | None, body: Any, digest: Digest) -> dict[str, Any]:
    """input_messages, system_instructions, tool_definitions and conversation_id (record attribute names)."""
    fn = _REQUEST.get(api_format)
    if fn is None or not isinstance(body, dict) or operation not in _CHAT_OPS:
        return {}
    out = fn(body, digest)
    if not out.get("input_messages"):
        out.pop("input_messages", None)
    return out
