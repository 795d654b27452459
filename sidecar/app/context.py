"""Caller identity and conversation id for the records of the calls made inside a block of code."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

_user: contextvars.ContextVar[str | None] = contextvars.ContextVar("sidecar_user", default=None)
_conversation: contextvars.ContextVar[str | None] = contextvars.ContextVar("sidecar_conversation", default=None)


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


@contextmanager
def conversation_context(conversation_id: str) -> Iterator[None]:
    """``with sidecar.conversation_context("thread-42"): ...`` stamps ``gen_ai.conversation.id``
    on the records (and spans) of the calls made inside the block; it wins over a header or a body field."""
    token = _conversation.set(conversation_id)
    try:
        yield
    finally:
        _conversation.reset(token)


def current_conversation() -> str | None:
    return _conversation.get()
