"""HMAC key: environment first, then the key file, else generated once with mode 0600."""

from __future__ import annotations

import logging
import os
import pathlib
import stat
import threading

import pytest

from sidecar.redact import RedactionError, Redactor, load_or_create_key


def test_env_value_wins(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "key"
    path.write_text("file-key-0123456789")
    assert load_or_create_key("env-key-0123456789abcdef", path) == b"env-key-0123456789abcdef"


def test_generated_once_0600_logged_and_reused(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state" / "hmac.key"
    with caplog.at_level(logging.WARNING, logger="sidecar.redact"):
        key = load_or_create_key(None, path)
    assert len(key) == 64 and bytes.fromhex(key.decode())  # 32 random bytes as hex
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(path) in caplog.text and key.decode() not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sidecar.redact"):
        assert load_or_create_key(None, path) == key
        assert load_or_create_key("", path) == key  # empty env value counts as unset
    assert "generated" not in caplog.text
    # the file content works as SIDECAR_HMAC_KEY too
    assert load_or_create_key(path.read_text().strip(), tmp_path / "other") == key
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_umask_does_not_widen_mode(tmp_path: pathlib.Path) -> None:
    old = os.umask(0)
    try:
        load_or_create_key(None, tmp_path / "k")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


def test_racing_creators_agree(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "race.key"
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(load_or_create_key(None, path))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and keys[0] == path.read_bytes().strip()


def test_empty_key_file_is_an_error(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "empty.key"
    path.write_bytes(b"")
    with pytest.raises(RedactionError, match="empty"):
        load_or_create_key(None, path)


def test_key_drives_tags(tmp_path: pathlib.Path) -> None:
    key = load_or_create_key(None, tmp_path / "k")
    again = load_or_create_key(None, tmp_path / "k")
    assert Redactor(key).fingerprint("x") == Redactor(again).fingerprint("x")
    with pytest.raises(RedactionError):
        Redactor(b"")
