"""Test settings: PostgreSQL unless DATABASE_URL says otherwise, huey in immediate mode, fast hashing."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/caiwei")

from caiwei.settings import *  # noqa: E402, F403

HUEY = {"huey_class": "huey.MemoryHuey", "immediate": True, "name": "caiwei-test"}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405  (whitenoise warns about a missing directory)
# Seals of the audit chain (audit/seals.py) go to a scratch directory, never into var/ beside a real database's;
# audit tests narrow this to one directory per test.
CAIWEI_AUDIT_SEAL_DIR = Path(tempfile.mkdtemp(prefix="caiwei-test-seals-"))
