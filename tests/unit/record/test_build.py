from __future__ import annotations

import gzip
import zlib

import pytest

from sidecar.record.build import decode_body, iso_utc, retry_after_seconds, salvage_request_fields, to_text


def test_decode_body() -> None:
    data = b'{"a": 1}' * 100
    assert decode_body(gzip.compress(data), "gzip", 10_000) == (data, None)
    assert decode_body(zlib.compress(data), "deflate", 10_000) == (data, None)
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert decode_body(raw.compress(data) + raw.flush(), "deflate", 10_000) == (data, None)
    assert decode_body(gzip.compress(data), "gzip", 50)[0] == data[:50]  # never more than the cap
    assert decode_body(b"not gzip", "gzip", 100) == (b"", "undecodable_gzip")
    assert decode_body(b"x", "br", 100) == (b"", "unsupported_encoding_br")
    assert decode_body(b"x", "x-secret-value", 100) == (b"", "unsupported_encoding")  # no header value written
    assert decode_body(b"x", None, 100) == (b"x", None)


def test_to_text() -> None:
    assert to_text("中文".encode()) == ("中文", None)
    assert to_text(b"ok \xff") == ("ok \ufffd", "invalid_utf8")
    assert to_text(bytes(range(256))) == (None, "binary")


def test_salvage_from_head_and_tail() -> None:
    head = b'{"max_tokens": 64, "messages": [{"content": "xxxxxxxx'
    tail = b'xxxxx"}], "model": "claude-x", "stream": true}'
    assert salvage_request_fields(head, tail) == {"request_model": "claude-x", "request_stream": True,
                                                  "request_max_tokens": 64}


@pytest.mark.parametrize("value,expected", [("2", 2.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None), (None, None)])
def test_retry_after(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected


def test_http_date_retry_after_is_in_the_future() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2099 07:28:00 GMT") > 1e6  # type: ignore[operator]


def test_iso_utc() -> None:
    assert iso_utc(1_700_000_000_123_456_000) == "2023-11-14T22:13:20.123456Z"
