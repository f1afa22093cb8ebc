"""Commands act as a named account, authenticated like a login, so role separation holds on the CLI too."""

import contextlib
import getpass
import os
from collections.abc import Iterator

from django.contrib.auth import authenticate
from django.core.management.base import CommandError

from caiwei.audit.context import acting_as

from . import twofactor
from .models import User
from .permissions import ensure


@contextlib.contextmanager
def authenticate_actor(username: str, capability: str | None, source: str = "cli") -> Iterator[User]:
    """Log ``username`` in with CAIWEI_PASSWORD or a prompt (and, with an authenticator bound, the code from
    CAIWEI_OTP or a prompt), check ``capability``, and act as them."""
    password = os.environ.get("CAIWEI_PASSWORD")
    if password is None:
        password = getpass.getpass(f"{username} 的密码：")
    with acting_as(None, source):
        user = authenticate(None, username=username, password=password)
        if user is None:
            raise CommandError(f"账号“{username}”认证失败（用户名或密码错误，或账号已锁定）")
        if twofactor.needs_enrolment(user):
            raise CommandError(f"三员账号“{username}”须先在网页登录并绑定动态口令，再使用命令行")
        if twofactor.has_device(user):
            code = os.environ.get("CAIWEI_OTP")
            if code is None:
                code = getpass.getpass(f"{username} 的动态口令（6 位数字）：")
            error = twofactor.verify(user, code)
            if error is not None:
                raise CommandError(f"账号“{username}”认证失败：{error}")
    with acting_as(user, source):
        if capability is not None:
            try:
                ensure(user, capability, f"cli:{capability}")
            except Exception as exc:
                raise CommandError(str(exc)) from exc
        yield user
