"""Bearer tokens of the API: one lookup used by the route-policy middleware and by the API's own auth."""

from datetime import timedelta

from django.utils import timezone

from .models import ApiToken, hash_token


def user_for_bearer(key: str):
    """The active account a bearer token belongs to, or None (unknown, expired, revoked, inactive or locked)."""
    record = ApiToken.objects.select_related("user").filter(key_hash=hash_token(key)).first()
    if record is None or not record.is_valid or not record.user.is_active or record.user.is_locked:
        return None
    now = timezone.now()
    if record.last_used_at is None or now - record.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=record.pk).update(last_used_at=now)
    return record.user
