"""Inline media (base64 images, audio, files) as a part that says what it was, never the bytes.

A part keeps the media type, the decoded size and a keyed hash (the same digest for the same
bytes under one key, so an auditor can match a file without the record holding it). URLs are
kept: they pass the redactor with the rest of the message.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64decode
from collections.abc import Callable
from typing import Any

#: keyed digest of the decoded bytes (``Redactor.keyed_digest`` bound to a purpose)
Digest = Callable[[bytes], str]

_DATA_URL = re.compile(r"data:([\w.+-]{1,64}/[\w.+-]{1,128})?((?:;[\w.+-]{1,64}=[\w.+-]{1,128})*);base64,",
                       re.ASCII)
_MODALITIES = ("image", "audio", "video")


def modality(mime: str | None) -> str:
    """image, audio or video from the media type (the conventions' enumeration); else ``file``."""
    major = (mime or "").split("/", 1)[0].lower()
    return major if major in _MODALITIES else "file"


def blob_part(data: str, mime: str | None, digest: Digest) -> dict[str, Any]:
    """A ``blob`` part for base64 ``data``: media type, modality, byte size and keyed hash."""
    try:
        raw = b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        raw = data.encode("utf-8", "replace")
    part: dict[str, Any] = {"type": "blob", "modality": modality(mime)}
    if mime:
        part["mime_type"] = mime.lower()[:128]
    part["size"] = len(raw)
    part["hmac"] = digest(raw)
    return part


def split_data_url(url: str) -> tuple[str | None, str] | None:
    """(media type, base64 data) of a ``data:...;base64,`` URL; None for any other URL."""
    m = _DATA_URL.match(url[:512])
    if not m:
        return None
    return m.group(1), url[m.end():]


def url_or_blob(url: str, mime: str | None, digest: Digest, default_modality: str = "image") -> dict[str, Any]:
    """An inline data URL becomes a blob part; any other URL a ``uri`` part."""
    data = split_data_url(url)
    if data is not None:
        return blob_part(data[1], data[0] or mime, digest)
    part: dict[str, Any] = {"type": "uri", "modality": modality(mime) if mime else default_modality, "uri": url}
    if mime:
        part["mime_type"] = mime
    return part


def media_marker(part: dict[str, Any]) -> str:
    """The short text that stands for inline media inside a raw body kept as content."""
    return f"<MEDIA:{part.get('mime_type', part['modality'])}:{part['size']}B:{part['hmac'][:16]}>"


_B64_RUN = re.compile(r"[A-Za-z0-9+/=\r\n]{1024,}")


def _looks_base64(value: str) -> bool:
    """A long run of the base64 alphabet that looks encoded (both cases and digits, whole quads),
    not a long word, a hex digest or a DNA sequence, which stay text."""
    if not _B64_RUN.fullmatch(value):
        return False
    body = value.replace("\r", "").replace("\n", "")
    sample = body[:4096]
    return len(body) % 4 == 0 and any(c.isdigit() for c in sample) and any(c.isupper() for c in sample) \
        and any(c.islower() for c in sample)


def strip_inline_media(value: Any, digest: Digest) -> Any:
    """``value`` (parsed JSON) with every data URL and every long base64 run replaced by a marker."""
    if isinstance(value, str):
        if len(value) < 1024:
            return value
        data = split_data_url(value)
        if data is not None:
            return media_marker(blob_part(data[1], data[0], digest))
        if _looks_base64(value):
            return media_marker(blob_part(value, None, digest))
        return value
    if isinstance(value, dict):
        mime = value.get("media_type") or value.get("mimeType") or value.get("mime_type")
        out: dict[str, Any] = {}
        for k, v in value.items():
            if isinstance(v, str) and len(v) >= 1024 and k in ("data", "file_data", "bytes") \
                    and split_data_url(v) is None:
                out[k] = media_marker(blob_part(v, mime if isinstance(mime, str) else None, digest))
            else:
                out[k] = strip_inline_media(v, digest)
        return out
    if isinstance(value, list):
        return [strip_inline_media(v, digest) for v in value]
    return value
