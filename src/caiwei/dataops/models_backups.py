"""Models of the backups part of 数据运维."""

from django.db import models  # noqa: F401

__all__: list[str] = []
