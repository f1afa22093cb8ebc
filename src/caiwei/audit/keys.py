"""The audit key lives outside the database, so someone holding only the database cannot re-forge the chain."""

import functools
import os
import secrets

from django.conf import settings


@functools.cache
def audit_key() -> bytes:
    value = os.environ.get("CAIWEI_AUDIT_KEY", "")
    if not value:
        path = settings.VAR_DIR / "audit_key"
        if not path.exists():
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        value = path.read_text().strip()
    return value.encode()
