"""Audit tests seal into a directory of their own, and tamper the way an intruder would: triggers off first."""

import importlib

import pytest
from django.db import connection

from caiwei.audit.models import AuditEvent, AuditHead

TRIGGERS = importlib.import_module("caiwei.audit.migrations.0003_head_mac_and_triggers")


@pytest.fixture(autouse=True)
def seal_dir(settings, tmp_path):
    """Seals go under the test's tmp_path, never into var/ (each test starts with no seal)."""
    settings.CAIWEI_AUDIT_SEAL_DIR = tmp_path / "audit-seals"
    return settings.CAIWEI_AUDIT_SEAL_DIR


def raw(sql: str, params=()) -> None:
    """Run ``sql`` on the audit tables with their triggers out of the way (``{table}``, ``{head}``).

    PostgreSQL disables the user triggers; SQLite has no switch, so they are dropped and created again. Both are
    transactional DDL: inside a test the triggers come back with the rollback anyway.
    """
    table, head = AuditEvent._meta.db_table, AuditHead._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            cursor.execute(f"ALTER TABLE {head} DISABLE TRIGGER USER")
        elif connection.vendor == "sqlite":
            for drop in TRIGGERS.SQLITE_DROP:
                cursor.execute(drop)
        cursor.execute(sql.format(table=table, head=head), params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            cursor.execute(f"ALTER TABLE {head} ENABLE TRIGGER USER")
        elif connection.vendor == "sqlite":
            for create in TRIGGERS.SQLITE_TRIGGERS:
                cursor.execute(create)


def head_values() -> tuple[int, str, str]:
    return AuditHead.objects.values_list("seq", "hash", "mac").get(pk=1)


def set_head(seq: int, hash_: str, mac: str) -> None:
    raw("UPDATE {head} SET seq = %s, hash = %s, mac = %s WHERE id = 1", [seq, hash_, mac])


@pytest.fixture
def cli_login(monkeypatch):
    """``cli_login(user)`` lets the next command log ``user`` in: the password, and a fresh 动态口令 when the
    account holds or needs an authenticator (the three administrators sign in with two factors)."""
    from caiwei.conftest import PASSWORD

    def login(user) -> None:
        monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
        try:
            from django_otp.oath import TOTP
            from django_otp.plugins.otp_totp.models import TOTPDevice

            from caiwei.accounts import twofactor
        except ImportError:
            return
        if not (twofactor.required(user) or twofactor.has_device(user)):
            return
        device = twofactor.confirmed_device(user) or TOTPDevice.objects.create(
            user=user, name="测试", confirmed=True
        )
        TOTPDevice.objects.filter(pk=device.pk).update(
            last_t=-1
        )  # a code is usable once: each login a new one
        device.refresh_from_db()
        code = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token()
        monkeypatch.setenv("CAIWEI_OTP", str(code).zfill(device.digits))

    return login
