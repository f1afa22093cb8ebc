"""A role granted or revoked ends the account's sessions and tokens, whichever path changed it."""

from django.db.models.signals import post_delete, post_save


def on_role_changed(sender, instance, raw=False, **kwargs):
    from .models import User, UserRole, revoke_access

    if raw or kwargs.get("created") is False:
        return
    # The caller's own instance when it is at hand, so its epoch is the new one too.
    user = (
        instance.user
        if UserRole.user.is_cached(instance)
        else User.objects.filter(pk=instance.user_id).first()
    )
    if user is not None:
        revoke_access(user, f"角色变更（{instance.get_role_display()}）")


def connect() -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from .models import UserRole

    post_save.connect(on_role_changed, sender=UserRole, dispatch_uid="caiwei.accounts.role_saved")
    post_delete.connect(on_role_changed, sender=UserRole, dispatch_uid="caiwei.accounts.role_deleted")
    # The device's key is the second factor itself: never in the audit log.
    TOTPDevice.audit_secret_fields = ("key",)
    TOTPDevice.audit_ignore_fields = (
        "last_t",
        "drift",
        "last_used_at",
        "throttling_failure_timestamp",
        "throttling_failure_count",
    )
