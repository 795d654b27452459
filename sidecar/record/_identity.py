"""Step: identity. Who made the call (user), in which conversation, with which key (fingerprinted)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sidecar.config import AppSettings
from sidecar.record._bodies import find_credential, header
from sidecar.record.capture import CallCapture


def identity_fields(cap: CallCapture, settings: AppSettings, body_user: Any, body_conversation: Any,
                    fingerprint: Callable[[str], str]) -> dict[str, Any]:
    """The context helpers win over the configured headers, which win over the body's own fields.
    The API key is never kept: only its keyed fingerprint and where it was sent."""
    user = cap.user_id
    if user is None and settings.user_header:
        user = header(cap.request_headers, settings.user_header)
    conversation = cap.conversation_id
    if not conversation and settings.conversation_header:
        conversation = header(cap.request_headers, settings.conversation_header)
    out: dict[str, Any] = {"user_id": user or body_user, "conversation_id": conversation or body_conversation}
    secret, where = find_credential(cap)
    if secret:
        out["credential_fingerprint"] = fingerprint(secret)
        out["credential_location"] = where
    return out
