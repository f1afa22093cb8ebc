"""Commands act as a named account, authenticated like a login, so role separation holds on the CLI too."""

import contextlib
import getpass
import os
from collections.abc import Iterator

from django.contrib.auth import authenticate
from django.core.management.base import CommandError

from caiwei.audit.context import acting_as

from .models import User
from .permissions import ensure


@contextlib.contextmanager
def authenticate_actor(username: str, capability: str | None, source: str = "cli") -> Iterator[User]:
    """Log ``username`` in with CAIWEI_PASSWORD or a prompt, check ``capability``, and act as them."""
    password = os.environ.get("CAIWEI_PASSWORD")
    if password is None:
        password = getpass.getpass(f"{username} 的密码：")
    with acting_as(None, source):
        user = authenticate(None, username=username, password=password)
        if user is None:
            raise CommandError(f"账号“{username}”认证失败（用户名或密码错误，或账号已锁定）")
    with acting_as(user, source):
        if capability is not None:
            try:
                ensure(user, capability, f"cli:{capability}")
            except Exception as exc:
                raise CommandError(str(exc)) from exc
        yield user
