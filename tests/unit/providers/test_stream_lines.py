"""SSE and NDJSON lines as the specifications split them, and parsers that never raise."""

from __future__ import annotations

import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.providers import StreamSummary, iter_lines, iter_sse_data, parse_error, parse_request, parse_response


def _event(obj: object, end: str = "\n") -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}{end}{end}"


def test_line_separators_inside_json_do_not_split_an_event() -> None:
    # U+2028, U+2029, U+0085, form feed and vertical tab are not line ends in SSE or NDJSON
    text = "a\u2028b\u2029c\u0085d\x0ce\x0bf"
    sse = _event({"choices": [{"delta": {"content": text}}]})
    summary = StreamSummary("openai", 1000)
    summary.feed(iter_sse_data(sse))
    assert summary.text() == text
    assert iter_lines(json.dumps({"response": text}, ensure_ascii=False) + "\n") == [
        json.dumps({"response": text}, ensure_ascii=False), ""]


def test_cr_crlf_and_lf_all_end_lines() -> None:
    for end in ("\n", "\r", "\r\n"):
        sse = _event({"n": 1}, end) + _event({"n": 2}, end)
        assert [json.loads(p)["n"] for p in iter_sse_data(sse)] == [1, 2]


def test_one_leading_space_is_stripped_after_data() -> None:
    assert list(iter_sse_data("data:   x\n\n")) == ["  x"]
    assert list(iter_sse_data("data:x\n\n")) == ["x"]
    assert list(iter_sse_data("data\ndata: y\n\n")) == ["\ny"]
    assert list(iter_sse_data(": comment\nevent: e\ndata: z\n\n")) == ["z"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["choices", "delta", "content", "text", "usage", "type", "message", "error", "model", "id",
                         "candidates", "parts", "done", "response", "stop_reason", "finish_reason", "x"]),
        inner, max_size=5),
    max_leaves=25,
)
FORMATS = ("openai", "anthropic", "gemini", "palm", "ollama", "unknown")
FUZZ_EXAMPLES = int(os.environ.get("SIDECAR_FUZZ_EXAMPLES", "2000"))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(st.lists(_json, max_size=6), st.sampled_from(["\n", "\r", "\r\n"]), st.text(max_size=80))
def test_fuzz_stream_parsers_never_raise(objs: list[object], end: str, noise: str) -> None:
    sse = "".join(_event(o, end) for o in objs) + noise
    ndjson = end.join(json.dumps(o) for o in objs) + noise
    for fmt in FORMATS:
        summary = StreamSummary(fmt, 50)
        summary.feed(iter_sse_data(sse))
        summary.feed(iter_lines(ndjson))
        assert len(summary.text()) <= 50
        for obj in objs:
            parse_request(fmt, obj)
            parse_response(fmt, obj)
            parse_error(fmt, obj)
