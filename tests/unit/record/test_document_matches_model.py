"""The record document is built as a dict, without the pydantic model (a hot path); the schema stays the
one source of truth: on generated values, the dict is exactly the model's dump (keys, order, types, values)."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from capture_factory import builder, capture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.record import AuditRecord
from sidecar.record._document import document, encode

_text = st.text(max_size=20)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_json_value = st.recursive(st.none() | st.booleans() | st.integers() | _finite | _text,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                           max_leaves=10)


def _strategy(annotation: Any) -> st.SearchStrategy[Any]:
    """Values of a field's declared type (``X | None``: ``X`` or None)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    kind = args[0]
    base: st.SearchStrategy[Any]
    if kind is str:
        base = _text
    elif kind is bool:
        base = st.booleans()
    elif kind is int:
        base = st.integers()
    elif kind is float:
        base = _finite
    elif typing.get_origin(kind) is list and typing.get_args(kind)[0] is str:
        base = st.lists(_text, max_size=3)
    elif typing.get_origin(kind) is list:
        base = st.lists(st.dictionaries(_text, _json_value, max_size=3), max_size=3)
    elif typing.get_origin(kind) is dict:
        base = st.dictionaries(_text, st.integers(min_value=0), max_size=3)
    else:
        raise AssertionError(f"no strategy for {annotation}")
    return base | st.none() if type(None) in typing.get_args(annotation) else base


_FIELDS = {name: _strategy(info.annotation) for name, info in AuditRecord.model_fields.items()}
_OPTIONAL = [name for name in _FIELDS if name not in ("event_id", "timestamp")]


@st.composite
def _values(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(_OPTIONAL), unique=True, max_size=len(_OPTIONAL)))
    return {name: draw(_FIELDS[name]) for name in ["event_id", "timestamp", *names]}


def _typed(doc: dict[str, Any]) -> list[tuple[str, type, Any]]:
    return [(k, type(v), v) for k, v in doc.items()]


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(_values())
def test_document_is_the_models_dump(values: dict[str, Any]) -> None:
    fast = document(**values)
    model = AuditRecord(**values).to_document()
    assert _typed(fast) == _typed(model)
    assert json.loads(encode(fast)) == json.loads(AuditRecord(**values).to_json())


_body = st.builds(lambda model, temp, top, seed, stop, stream: json.dumps(
    {"model": model, "temperature": temp, "top_p": top, "seed": seed, "stop": stop, "stream": stream,
     "messages": [{"role": "user", "content": model}]}).encode(),
    _text, st.integers(-5, 5) | _finite, st.integers(0, 2) | _finite, st.integers(), st.lists(_text, max_size=2),
    st.booleans())
_B = builder()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_body, st.sampled_from([200, 400, None]))
def test_built_records_are_what_the_model_would_emit(body: bytes, status: int | None) -> None:
    doc = _B.build(capture(body=body, status=status), 1)
    assert _typed(doc) == _typed(AuditRecord.model_validate(doc).to_document())


_any_text = st.text(alphabet=st.characters(codec=None), max_size=20)  # lone surrogates included
_odd_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | _any_text,
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                         max_leaves=8)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(_text, _odd_json, max_size=6))
def test_the_fast_serializer_writes_what_the_standard_library_would(fields: dict[str, Any]) -> None:
    """orjson where it can, the standard library where it cannot: strict UTF-8 JSON either way, and
    the same values as the standard library's line (floats compared as values, not spellings)."""
    from sidecar.record._document import _encode_std

    doc = {"event.id": "p-1", **fields}
    expected = json.loads(_encode_std(dict(doc)), parse_constant=lambda c: pytest.fail(c))
    line = encode(dict(doc))
    assert json.loads(line.decode("utf-8", errors="strict"), parse_constant=lambda c: pytest.fail(c)) == expected
