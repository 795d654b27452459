"""The one exception type of the redaction engine."""

from __future__ import annotations

from sidecar.errors import SidecarError

__all__ = ["RedactionError"]


class RedactionError(SidecarError):
    """Redaction could not be done safely.

    Raised at start-up for bad configuration (the message names the rule) and at run time when
    the engine fails on some input.  Messages never contain the input text or a matched value.
    A caller that gets this from a ``redact_*`` method must store a marker instead of the
    content, never the content itself.
    """
