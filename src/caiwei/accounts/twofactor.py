"""动态口令 (TOTP, RFC 6238) as the second factor: required of the three administrators, open to everyone.

Devices are django-otp's ``TOTPDevice``; a wrong code counts toward the same lock-out as a wrong password.
A key being enrolled lives only in the enrolling session until a code from it is confirmed.
"""

import base64
import io
import time
from binascii import unhexlify
from urllib.parse import quote, urlencode

from django.db import transaction
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from . import lockout
from .models import User, revoke_access
from .roles import TRI_ADMIN_ROLES

ISSUER = "财维"
WRONG_CODE = "动态口令错误"
DEVICE_NAME = "动态口令"


def confirmed_device(user: User) -> TOTPDevice | None:
    if user is None or not user.pk:
        return None
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def has_device(user: User) -> bool:
    return confirmed_device(user) is not None


def required(user: User) -> bool:
    """The three administrators must sign in with two factors (等保三级)."""
    return user.has_role(*TRI_ADMIN_ROLES)


def needs_enrolment(user: User) -> bool:
    return required(user) and not has_device(user)


def pending_step(user: User) -> str | None:
    """What the login still needs after the password: ``code``, ``enrol`` or nothing."""
    if has_device(user):
        return "code"
    if required(user):
        return "enrol"
    return None


def _clean(code) -> str:
    return "".join(str(code or "").split())


def verify(user: User, code) -> str | None:
    """Check ``code`` against the user's device; None when right, else the message (wrong codes count)."""
    with transaction.atomic():
        # The row lock makes a code usable once, even by two requests at the same moment.
        device = (
            TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk").first()
        )
        if device is None:
            return "该账号未绑定动态口令"
        if user.is_locked or not lockout.succeed(user, reset=False):
            return lockout.LOCKED
        allowed, info = device.verify_is_allowed()
        if not allowed:
            wait = (info or {}).get("locked_until")
            return "动态口令错误次数过多，请稍候几秒再试" if wait else "暂时不能验证动态口令，请稍后再试"
        code = _clean(code)
        if code.isdigit() and len(code) == device.digits and device.verify_token(code):
            return None if lockout.succeed(user) else lockout.LOCKED
        return lockout.fail(user, WRONG_CODE)


def new_key() -> str:
    return random_hex(20)


def secret_text(key_hex: str) -> str:
    """The key as the authenticator apps expect it typed: base32, in groups of four."""
    b32 = base64.b32encode(unhexlify(key_hex)).decode().rstrip("=")
    return " ".join(b32[i : i + 4] for i in range(0, len(b32), 4))


def config_url(user: User, key_hex: str) -> str:
    label = quote(f"{ISSUER}:{user.get_username()}")
    params = urlencode(
        {
            "secret": base64.b32encode(unhexlify(key_hex)).decode().rstrip("="),
            "algorithm": "SHA1",
            "digits": 6,
            "period": 30,
        }
    )
    return f"otpauth://totp/{label}?{params}&issuer={quote(ISSUER)}"


def qr_data_uri(data: str) -> str:
    """The QR code as an SVG data URI for an <img>: no script, no inline style (the CSP allows neither)."""
    import qrcode
    import qrcode.image.svg

    out = io.BytesIO()
    qrcode.make(data, image_factory=qrcode.image.svg.SvgPathFillImage, box_size=8, border=2).save(out)
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode()


def enrol(user: User, key_hex: str, code) -> str | None:
    """Bind a device with ``key_hex`` once a code from it is right; None on success, else the message."""
    if has_device(user):
        return "该账号已绑定动态口令"
    if user.is_locked or not lockout.succeed(user, reset=False):
        return lockout.LOCKED
    code = _clean(code)
    totp = TOTP(unhexlify(key_hex), step=30, t0=0, digits=6, drift=0)
    totp.time = time.time()
    if not (code.isdigit() and len(code) == 6 and totp.verify(int(code), tolerance=1)):
        return lockout.fail(user, WRONG_CODE)
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        TOTPDevice.objects.create(
            user=user, name=DEVICE_NAME, key=key_hex, confirmed=True, last_t=totp.t(), drift=totp.drift
        )
    lockout.succeed(user)
    return None


def remove(user: User, reason: str = "重置动态口令") -> int:
    """Unbind the user's devices; their sessions and tokens end with it."""
    with transaction.atomic():
        count, _ = TOTPDevice.objects.filter(user=user).delete()
        if count:
            revoke_access(user, reason)
    return count
