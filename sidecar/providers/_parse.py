"""Turn request and response bodies into record fields, per wire format.

Every function here is pure and tolerant: odd shapes give fewer fields, never an
exception (the caller still guards them). Field names are AuditRecord attribute names.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sidecar.providers._output import StreamMessages

Fields = dict[str, Any]


_INT64 = 2**63


def _num(v: Any) -> float | None:
    """A finite number (JSON parsers here accept NaN and Infinity; the index does not)."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except OverflowError:  # an integer too large for a float
        return None
    return f if math.isfinite(f) else None


def _int(v: Any) -> int | None:
    """An integer that fits the index's 64-bit long."""
    return int(v) if isinstance(v, int) and not isinstance(v, bool) and -_INT64 <= v < _INT64 else None


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _stops(v: Any) -> list[str] | None:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        out = [s for s in v if isinstance(s, str)]
        return out or None
    return None


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _set(f: Fields, key: str, value: Any) -> None:
    if value is not None:
        f[key] = value


# ---------------------------------------------------------------- requests


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """The value of the first of ``keys`` present in ``obj`` (None when none is)."""
    for key in keys:
        if key in obj:
            return obj[key]
    return None


# (record field, converter, the keys tried in order: the first one present is read)
_Spec = tuple[tuple[str, Callable[[Any], Any], tuple[str, ...]], ...]


def _read(f: Fields, obj: dict[str, Any], spec: _Spec) -> None:
    for field, convert, keys in spec:
        _set(f, field, convert(_first(obj, keys)))


_OPENAI_REQUEST: _Spec = (
    ("request_model", _str, ("model",)),
    ("request_max_tokens", _int, ("max_completion_tokens", "max_tokens", "max_output_tokens")),
    ("request_temperature", _num, ("temperature",)),
    ("request_top_p", _num, ("top_p",)),
    ("request_stop_sequences", _stops, ("stop",)),
    ("request_frequency_penalty", _num, ("frequency_penalty",)),
    ("request_presence_penalty", _num, ("presence_penalty",)),
    ("request_seed", _int, ("seed",)),
)
_ANTHROPIC_REQUEST: _Spec = (
    ("request_model", _str, ("model",)),
    ("request_max_tokens", _int, ("max_tokens",)),
    ("request_temperature", _num, ("temperature",)),
    ("request_top_p", _num, ("top_p",)),
    ("request_top_k", _num, ("top_k",)),
    ("request_stop_sequences", _stops, ("stop_sequences",)),
)
_GEMINI_REQUEST: _Spec = (  # read from generationConfig
    ("request_max_tokens", _int, ("maxOutputTokens", "max_output_tokens")),
    ("request_temperature", _num, ("temperature",)),
    ("request_top_p", _num, ("topP", "top_p")),
    ("request_top_k", _num, ("topK", "top_k")),
    ("request_stop_sequences", _stops, ("stopSequences", "stop_sequences")),
    ("request_seed", _int, ("seed",)),
    ("request_presence_penalty", _num, ("presencePenalty",)),
    ("request_frequency_penalty", _num, ("frequencyPenalty",)),
)
_PALM_REQUEST: _Spec = (
    ("request_max_tokens", _int, ("maxOutputTokens",)),
    ("request_temperature", _num, ("temperature",)),
    ("request_top_p", _num, ("topP",)),
    ("request_top_k", _num, ("topK",)),
    ("request_stop_sequences", _stops, ("stopSequences",)),
)
_OLLAMA_REQUEST: _Spec = (  # read from options
    ("request_max_tokens", _int, ("num_predict",)),
    ("request_temperature", _num, ("temperature",)),
    ("request_top_p", _num, ("top_p",)),
    ("request_top_k", _num, ("top_k",)),
    ("request_seed", _int, ("seed",)),
    ("request_stop_sequences", _stops, ("stop",)),
)


def parse_request(api_format: str, body: Any) -> Fields:
    """``body`` is the decoded JSON request (or anything else: then nothing is read)."""
    if not isinstance(body, dict):
        return {}
    f: Fields = {}
    if api_format == "openai":
        _read(f, body, _OPENAI_REQUEST)
        f["request_stream"] = body.get("stream") is True
        _set(f, "body_user", _str(body.get("user")) or _str(body.get("safety_identifier")))
    elif api_format == "anthropic":
        _read(f, body, _ANTHROPIC_REQUEST)
        f["request_stream"] = body.get("stream") is True
        _set(f, "body_user", _str(_d(body.get("metadata")).get("user_id")))
    elif api_format == "gemini":
        _read(f, _d(body.get("generationConfig") or body.get("generation_config")), _GEMINI_REQUEST)
    elif api_format == "palm":
        _read(f, body, _PALM_REQUEST)
    elif api_format == "ollama":
        _set(f, "request_model", _str(body.get("model")))
        _read(f, _d(body.get("options")), _OLLAMA_REQUEST)
        f["request_stream"] = body.get("stream", True) is not False  # Ollama streams unless told not to
    return f


def looks_like_model_request(api_format: str, body: Any) -> bool:
    """Body-shape confirmation for generic paths such as ``/api/chat``."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return False
    if api_format == "ollama":
        return "messages" in body or "prompt" in body or "input" in body
    return True


# ---------------------------------------------------------------- whole responses


_OPENAI_USAGE: _Spec = (("input_tokens", _int, ("prompt_tokens", "input_tokens")),
                        ("output_tokens", _int, ("completion_tokens", "output_tokens")))
_ANTHROPIC_USAGE: _Spec = tuple((name, _int, (name,)) for name in (
    "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))
_GEMINI_USAGE: _Spec = (("input_tokens", _int, ("promptTokenCount",)),
                        ("output_tokens", _int, ("candidatesTokenCount",)),
                        ("cache_read_input_tokens", _int, ("cachedContentTokenCount",)))
_OLLAMA_USAGE: _Spec = (("input_tokens", _int, ("prompt_eval_count",)), ("output_tokens", _int, ("eval_count",)))


def _openai_usage(f: Fields, usage: Any) -> None:
    u = _d(usage)
    _read(f, u, _OPENAI_USAGE)
    details = _d(u.get("prompt_tokens_details") or u.get("input_tokens_details"))
    _set(f, "cache_read_input_tokens", _int(details.get("cached_tokens")))


def _anthropic_usage(f: Fields, usage: Any) -> None:
    _read(f, _d(usage), _ANTHROPIC_USAGE)


def _gemini_usage(f: Fields, usage: Any) -> None:
    _read(f, _d(usage), _GEMINI_USAGE)


def _gemini_text(obj: dict[str, Any]) -> Iterator[str]:
    for cand in _list(obj.get("candidates")):
        for part in _list(_d(_d(cand).get("content")).get("parts")):
            t = _d(part).get("text")
            if isinstance(t, str):
                yield t
        out = _d(cand).get("output")  # PaLM generateText
        if isinstance(out, str):
            yield out


def _gemini_finish(obj: dict[str, Any]) -> list[str]:
    return [c["finishReason"] for c in _list(obj.get("candidates")) if isinstance(c, dict)
            and isinstance(c.get("finishReason"), str)]


def parse_error(api_format: str, body: Any) -> Fields:
    f: Fields = {}
    if not isinstance(body, dict):
        return f
    err = body.get("error")
    if isinstance(err, str):  # Ollama
        f["error_message"] = err
    elif isinstance(err, dict):
        code = err.get("type") if api_format == "anthropic" else (err.get("code") or err.get("status")
                                                                   or err.get("type"))
        if code is not None:
            f["error_code"] = str(code)
        _set(f, "error_message", _str(err.get("message")))
    return f


def parse_response(api_format: str, body: Any) -> Fields:
    """A complete (not streamed) JSON response body."""
    if not isinstance(body, dict):
        return {}
    if "error" in body and api_format != "palm":
        return parse_error(api_format, body)
    f: Fields = {}
    if api_format == "openai":
        _set(f, "response_id", _str(body.get("id")))
        _set(f, "response_model", _str(body.get("model")))
        reasons = [c.get("finish_reason") for c in _list(body.get("choices")) if isinstance(c, dict)]
        reasons = [r for r in reasons if isinstance(r, str)]
        if not reasons and isinstance(body.get("status"), str) and body.get("object") == "response":
            reasons = [body["status"]]
        _set(f, "response_finish_reasons", reasons or None)
        _openai_usage(f, body.get("usage"))
    elif api_format == "anthropic":
        _set(f, "response_id", _str(body.get("id")))
        _set(f, "response_model", _str(body.get("model")))
        _set(f, "response_finish_reasons", [body["stop_reason"]] if _str(body.get("stop_reason")) else None)
        _anthropic_usage(f, body.get("usage"))
    elif api_format in ("gemini", "palm"):
        _set(f, "response_id", _str(body.get("responseId")))
        _set(f, "response_model", _str(body.get("modelVersion")))
        _set(f, "response_finish_reasons", _gemini_finish(body) or None)
        _gemini_usage(f, body.get("usageMetadata"))
        if api_format == "palm" and body.get("filters"):
            f["response_finish_reasons"] = ["FILTERED"]
    elif api_format == "ollama":
        _set(f, "response_model", _str(body.get("model")))
        _set(f, "response_finish_reasons", [body["done_reason"]] if _str(body.get("done_reason")) else None)
        _read(f, body, _OLLAMA_USAGE)
    return f


# ---------------------------------------------------------------- streams


_LINE_END = re.compile(r"\r\n|\r|\n")


def iter_lines(text: str) -> list[str]:
    """Lines as the SSE and NDJSON specifications end them: CRLF, CR or LF, nothing else
    (``str.splitlines`` also splits on U+2028, U+0085, form feeds ... inside a JSON string)."""
    return _LINE_END.split(text)


def iter_sse_data(text: str) -> Iterator[str]:
    """The ``data`` payloads of a server-sent-event stream (multi-line data joined with LF).

    As the specification reads a line: ``data:value`` or ``data: value`` (one leading space
    removed, no more), ``data`` alone is an empty value, other fields and comments are skipped."""
    data: list[str] = []
    for line in _LINE_END.split(text):
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[6:] if line[5:6] == " " else line[5:])
        elif line == "data":
            data.append("")
    if data:
        yield "\n".join(data)


def _loads_all(chunks: Iterable[str]) -> Iterator[dict[str, Any]]:
    for c in chunks:
        c = c.strip()
        if not c or c == "[DONE]":
            continue
        try:
            obj = json.loads(c)
        except ValueError:
            continue
        if isinstance(obj, dict):
            yield obj
        elif isinstance(obj, list):  # Gemini without alt=sse streams one JSON array
            yield from (o for o in obj if isinstance(o, dict))


class StreamSummary:
    """Folds a stream's events into record fields and the assembled output text."""

    def __init__(self, api_format: str, max_chars: int) -> None:
        self.api_format = api_format
        self.fields: Fields = {}
        self._text: list[str] = []
        self._chars = 0
        self._max = max_chars
        self.truncated = False
        self.events = 0
        self.output = StreamMessages(api_format)
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "openai": self._openai, "anthropic": self._anthropic, "gemini": self._gemini,
            "palm": self._gemini, "ollama": self._ollama,
        }

    def text(self) -> str:
        return "".join(self._text)

    def _add_text(self, t: Any) -> None:
        if not isinstance(t, str) or not t:
            return
        room = self._max - self._chars
        if room <= 0:
            self.truncated = True
            return
        if len(t) > room:
            t = t[:room]
            self.truncated = True
        self._text.append(t)
        self._chars += len(t)

    def feed(self, payloads: Iterable[str]) -> None:
        handler = self._handlers.get(self.api_format)
        if handler is None:
            return
        for obj in _loads_all(payloads):
            self.events += 1
            if "error" in obj and self.api_format != "anthropic":
                self.fields.update(parse_error(self.api_format, obj))
                continue
            handler(obj)
            self.output.feed(obj)

    def _openai(self, obj: dict[str, Any]) -> None:
        f = self.fields
        typ = obj.get("type")
        if isinstance(typ, str) and typ.startswith("response."):  # Responses API events
            if typ == "response.output_text.delta":
                self._add_text(obj.get("delta"))
            resp = _d(obj.get("response"))
            if resp:
                f.update({k: v for k, v in parse_response("openai", resp).items() if v is not None})
            return
        _set(f, "response_id", _str(obj.get("id")))
        _set(f, "response_model", _str(obj.get("model")))
        for choice in _list(obj.get("choices")):
            c = _d(choice)
            self._add_text(_d(c.get("delta")).get("content"))
            self._add_text(c.get("text"))
            reason = c.get("finish_reason")
            if isinstance(reason, str):
                f.setdefault("response_finish_reasons", []).append(reason)
        if obj.get("usage"):
            _openai_usage(f, obj["usage"])

    def _anthropic(self, obj: dict[str, Any]) -> None:
        f = self.fields
        typ = obj.get("type")
        if typ == "message_start":
            msg = _d(obj.get("message"))
            _set(f, "response_id", _str(msg.get("id")))
            _set(f, "response_model", _str(msg.get("model")))
            _anthropic_usage(f, msg.get("usage"))
        elif typ == "content_block_delta":
            self._add_text(_d(obj.get("delta")).get("text"))
        elif typ == "message_delta":
            reason = _d(obj.get("delta")).get("stop_reason")
            if isinstance(reason, str):
                f["response_finish_reasons"] = [reason]
            usage = _d(obj.get("usage"))
            _set(f, "output_tokens", _int(usage.get("output_tokens")))
            if _int(usage.get("input_tokens")):
                _anthropic_usage(f, {k: v for k, v in usage.items() if k != "output_tokens"})
        elif typ == "error":
            f.update(parse_error("anthropic", obj))

    def _gemini(self, obj: dict[str, Any]) -> None:
        f = self.fields
        for t in _gemini_text(obj):
            self._add_text(t)
        reasons = _gemini_finish(obj)
        if reasons:
            f["response_finish_reasons"] = reasons
        if obj.get("usageMetadata"):
            _gemini_usage(f, obj["usageMetadata"])
        _set(f, "response_id", _str(obj.get("responseId")))
        _set(f, "response_model", _str(obj.get("modelVersion")))

    def _ollama(self, obj: dict[str, Any]) -> None:
        f = self.fields
        _set(f, "response_model", _str(obj.get("model")))
        self._add_text(_d(obj.get("message")).get("content"))
        self._add_text(obj.get("response"))
        if obj.get("done") is True:
            f.update(parse_response("ollama", obj))
