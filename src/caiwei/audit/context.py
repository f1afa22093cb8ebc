"""Who is acting, from where: set by the middleware for requests and by commands and jobs otherwise."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Actor:
    user_id: int | None = None
    username: str = "system"
    ip: str | None = None
    request_id: str = ""
    source: str = "system"  # web, api, admin, cli, job, system


_current: ContextVar[Actor | None] = ContextVar("caiwei_actor", default=None)
_request: ContextVar[object | None] = ContextVar("caiwei_request", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_actor() -> Actor:
    actor = _current.get() or Actor(request_id=new_request_id())
    request = _request.get()
    if request is not None:
        # The user is resolved late: authentication (session or API token) happens after the middleware.
        user = getattr(request, "user", None)
        if user is not None and getattr(user, "is_authenticated", False):
            actor = replace(actor, user_id=user.pk, username=user.get_username())
    return actor


@contextlib.contextmanager
def acting(actor: Actor, request: object | None = None) -> Iterator[Actor]:
    token = _current.set(actor)
    request_token = _request.set(request)
    try:
        yield actor
    finally:
        _current.reset(token)
        _request.reset(request_token)


def acting_as(user, source: str) -> contextlib.AbstractContextManager[Actor]:
    """Context for a command or job acting as a known user (or as the system when user is None)."""
    if user is None:
        return acting(Actor(request_id=new_request_id(), source=source, username=f"system:{source}"))
    return acting(
        Actor(user_id=user.pk, username=user.get_username(), request_id=new_request_id(), source=source)
    )
