from __future__ import annotations

import pytest

from sidecar.spool._reader import read_doc_header


@pytest.mark.parametrize("line,expected", [
    (b'{"event.id":"ab12-7","@timestamp":"2026-01-31T23:59:59.999999Z","x":1}', ("ab12-7", "2026.01.31")),
    (b'{"@timestamp":"2026-02-01T00:00:00Z","event.id":"other-order"}', ("other-order", "2026.02.01")),
    (b'{"event.id":"x"}', None),
    (b'not json', None),
    (b'[1, 2]', None),
    (b'{"event.id":5,"@timestamp":"2026-02-01T00:00:00Z"}', None),
])
def test_read_doc_header(line: bytes, expected: tuple[str, str] | None) -> None:
    assert read_doc_header(line) == expected
