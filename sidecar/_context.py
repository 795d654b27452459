"""Caller identity for the records of the calls made inside a block of code."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

_user: contextvars.ContextVar[str | None] = contextvars.ContextVar("sidecar_user", default=None)


@contextmanager
def user_context(user_id: str) -> Iterator[None]:
    """``with sidecar.user_context("alice"): client.chat.completions.create(...)`` stamps ``user.id``.

    Works across threads' own contexts and asyncio tasks (a contextvar)."""
    token = _user.set(user_id)
    try:
        yield
    finally:
        _user.reset(token)


def current_user() -> str | None:
    return _user.get()
