"""Keys that live outside the database: someone holding only the database can neither re-forge the audit chain
nor read the target databases' passwords."""

import functools
import os
import secrets

from django.conf import settings


def local_key(env: str, filename: str, nbytes: int = 32) -> str:
    """A hex key from the environment, else from a file under var/ created on first use (mode 0600)."""
    value = os.environ.get(env, "")
    if not value:
        path = settings.VAR_DIR / filename
        if not path.exists():
            path.write_text(secrets.token_hex(nbytes))
            path.chmod(0o600)
        value = path.read_text().strip()
    return value


@functools.cache
def audit_key() -> bytes:
    return local_key("CAIWEI_AUDIT_KEY", "audit_key").encode()
