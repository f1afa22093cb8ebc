import pytest


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    """Hundreds of cases each make the ten accounts of ``users``: hash their passwords cheaply."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
