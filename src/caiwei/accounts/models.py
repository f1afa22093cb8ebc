import hashlib
import secrets
from datetime import UTC, datetime

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.crypto import salted_hmac

from .roles import CAPABILITIES, TRI_ADMIN_ROLES, Role


class CaiweiUserManager(UserManager):
    def create_superuser(self, *args, **kwargs):
        raise ValidationError(
            "财维不设超级用户：请分别创建系统管理员、安全保密管理员和安全审计员（三员分设）"
        )


class User(AbstractUser):
    """平台账号. Never a superuser: the three separated administrators share the powers between them."""

    full_name = models.CharField("姓名", max_length=60, blank=True)
    organization = models.CharField("所属单位", max_length=120, blank=True)
    # For a 银行用户: the agent bank (ele_bank.bank_code) whose reconciliation the account sees and signs.
    bank_code = models.CharField("所属代理银行编码", max_length=12, blank=True)
    regions = models.ManyToManyField(
        "regions.Region",
        through="RegionGrant",
        through_fields=("user", "region"),
        related_name="users",
        verbose_name="授权区划",
        blank=True,
    )
    failed_logins = models.PositiveIntegerField("连续登录失败次数", default=0)
    locked_until = models.DateTimeField("锁定至", null=True, blank=True)
    password_changed_at = models.DateTimeField("密码修改时间", null=True, blank=True)
    # Part of every session's auth hash: raised on a role or status change, so old sessions stop working.
    auth_epoch = models.PositiveIntegerField("会话版本", default=0, editable=False)

    objects = CaiweiUserManager()

    audit_ignore_fields = ("last_login", "failed_logins", "auth_epoch")

    class Meta:
        verbose_name = verbose_name_plural = "用户"
        constraints = [models.CheckConstraint(condition=Q(is_superuser=False), name="user_never_superuser")]

    def __str__(self) -> str:
        return f"{self.full_name}（{self.username}）" if self.full_name else self.username

    @property
    def role_codes(self) -> frozenset[str]:
        cached = getattr(self, "_role_codes", None)
        if cached is None:
            cached = frozenset(self.role_grants.values_list("role", flat=True)) if self.pk else frozenset()
            self._role_codes = cached
        return cached

    def forget_roles(self) -> None:
        self.__dict__.pop("_role_codes", None)

    def role_labels(self) -> list[str]:
        return [Role(code).label for code in Role if code in self.role_codes]

    def has_role(self, *roles: str) -> bool:
        return bool(self.role_codes & set(roles))

    def can(self, capability: str) -> bool:
        return self.is_active and bool(self.role_codes & CAPABILITIES[capability])

    @property
    def is_locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > timezone.now()

    def set_password(self, raw_password):
        super().set_password(raw_password)
        self.password_changed_at = timezone.now()

    def _get_session_auth_hash(self, secret=None):
        # Django hashes the password only; the epoch makes a lock, deactivation or role change end sessions too.
        key_salt = "caiwei.accounts.User.get_session_auth_hash"
        value = f"{self.password}:{self.auth_epoch}"
        return salted_hmac(key_salt, value, secret=secret, algorithm="sha256").hexdigest()

    def save(self, *args, **kwargs):
        """A new password, a deactivation or a lock ends the account's sessions and API tokens, on every path."""
        reason = None
        update_fields = kwargs.get("update_fields")
        if self.pk and not self._state.adding:
            watched = {"password", "is_active", "locked_until"}
            if update_fields is None or watched & set(update_fields):
                old = User.objects.filter(pk=self.pk).values("password", "is_active", "locked_until").first()
                if old is not None:
                    was_locked = old["locked_until"] is not None and old["locked_until"] > timezone.now()
                    if old["password"] != self.password:
                        reason = "密码变更"
                    elif old["is_active"] and not self.is_active:
                        reason = "停用"
                    elif self.is_locked and not was_locked:
                        reason = "锁定"
            # The epoch only ever moves up, by an F() increment: a stale instance must not write an old value back.
            names = (
                update_fields if update_fields is not None else [f.name for f in self._meta.concrete_fields]
            )
            kwargs["update_fields"] = [n for n in names if n not in ("auth_epoch", "id")]
        super().save(*args, **kwargs)
        if reason:
            revoke_access(self, reason)

    # The admin site asks these; capabilities answer instead of Django's per-model permissions.
    def has_perm(self, perm, obj=None):
        return False

    def has_module_perms(self, app_label):
        return False


LOCKED_FOREVER = datetime(9999, 12, 30, tzinfo=UTC)  # a manual lock lasts until someone unlocks


def revoke_access(user: "User", reason: str) -> int:
    """End every session (raise the epoch) and revoke every API token of ``user``; record it if anything died."""
    from caiwei.audit.log import record
    from caiwei.audit.models import AuditAction

    User.objects.filter(pk=user.pk).update(auth_epoch=F("auth_epoch") + 1)
    user.auth_epoch = User.objects.filter(pk=user.pk).values_list("auth_epoch", flat=True).first() or 0
    revoked = ApiToken.objects.filter(user_id=user.pk, revoked=False).update(revoked=True)
    if revoked or user.last_login:
        record(
            AuditAction.UPDATE,
            obj=user,
            detail={"event": "会话与令牌失效", "reason": reason, "tokens_revoked": revoked},
        )
    return revoked


class UserRole(models.Model):
    """角色授予. ``tri_admin`` is 1 for the three administrator roles, so one unique index forbids two of them."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="role_grants", verbose_name="用户")
    role = models.CharField("角色", max_length=20, choices=Role.choices)
    tri_admin = models.GeneratedField(
        expression=Case(When(role__in=sorted(TRI_ADMIN_ROLES), then=Value(1)), default=None),
        output_field=models.SmallIntegerField(null=True),
        db_persist=True,
    )
    granted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name="授予人"
    )
    granted_at = models.DateTimeField("授予时间", default=timezone.now)

    class Meta:
        verbose_name = verbose_name_plural = "角色授予"
        constraints = [
            models.UniqueConstraint(fields=["user", "role"], name="userrole_once"),
            models.UniqueConstraint(
                fields=["user", "tri_admin"],
                name="userrole_one_tri_admin",
                violation_error_message="三员分设：一个账号不能同时担任系统管理员、安全保密管理员、安全审计员中的两个",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user.username}：{self.get_role_display()}"

    def clean(self) -> None:
        if self.role in TRI_ADMIN_ROLES and self.user_id:
            held = UserRole.objects.filter(user_id=self.user_id, role__in=TRI_ADMIN_ROLES).exclude(pk=self.pk)
            other = held.exclude(role=self.role).first()
            if other:
                raise ValidationError(
                    {
                        "role": f"三员分设：该账号已担任{other.get_role_display()}，不能再担任{self.get_role_display()}"
                    }
                )


class RegionGrant(models.Model):
    """区划授权."""

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="region_grants", verbose_name="用户"
    )
    region = models.ForeignKey(
        "regions.Region", on_delete=models.CASCADE, related_name="grants", verbose_name="区划"
    )
    granted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name="授予人"
    )
    granted_at = models.DateTimeField("授予时间", default=timezone.now)

    class Meta:
        verbose_name = verbose_name_plural = "区划授权"
        constraints = [models.UniqueConstraint(fields=["user", "region"], name="regiongrant_once")]

    def __str__(self) -> str:
        return f"{self.user.username}：{self.region}"


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """接口令牌 for scripts: only the SHA-256 of the key is stored; the key is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens", verbose_name="用户")
    name = models.CharField("用途", max_length=60)
    prefix = models.CharField("前缀", max_length=8, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    expires_at = models.DateTimeField("到期时间", null=True, blank=True)
    last_used_at = models.DateTimeField("最近使用", null=True, blank=True)
    revoked = models.BooleanField("已吊销", default=False)

    audit_secret_fields = ("key_hash",)
    audit_ignore_fields = ("last_used_at",)

    class Meta:
        verbose_name = verbose_name_plural = "接口令牌"

    def __str__(self) -> str:
        return f"{self.name}（{self.prefix}…）"

    @classmethod
    def issue(cls, user: User, name: str, expires_at=None) -> tuple["ApiToken", str]:
        key = "cw_" + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user, name=name, prefix=key[:8], key_hash=hash_token(key), expires_at=expires_at
        )
        return token, key

    @property
    def is_valid(self) -> bool:
        return not self.revoked and (self.expires_at is None or self.expires_at > timezone.now())


class ChangeKind(models.TextChoices):
    SET_ROLES = "set_roles", "设置角色（涉及三员）"
    DEACTIVATE = "deactivate", "停用账号"
    ACTIVATE = "activate", "启用账号"
    LOCK = "lock", "锁定账号"
    UNLOCK = "unlock", "解除锁定"
    RESET_PASSWORD = "reset_password", "重置密码"
    RESET_OTP = "reset_otp", "重置动态口令"


class ChangeStatus(models.TextChoices):
    PENDING = "pending", "待批准"
    APPROVED = "approved", "已批准并执行"
    REJECTED = "rejected", "已驳回"
    WITHDRAWN = "withdrawn", "已撤回"


class AccountChangeRequest(models.Model):
    """账号变更申请: a change touching the three administrators takes a proposer and a different approver."""

    subject = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="change_requests", verbose_name="对象账号"
    )
    kind = models.CharField("操作", max_length=20, choices=ChangeKind.choices)
    payload = models.JSONField("内容", default=dict, blank=True)
    # A proposed password is kept only as its hash, and masked in the audit log.
    secret = models.CharField("密码哈希", max_length=200, blank=True, editable=False)
    reason = models.CharField("理由", max_length=200, blank=True)
    proposer = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", verbose_name="提出人")
    proposer_role = models.CharField("提出人职责", max_length=20, choices=Role.choices)
    proposed_at = models.DateTimeField("提出时间", default=timezone.now)
    status = models.CharField(
        "状态", max_length=10, choices=ChangeStatus.choices, default=ChangeStatus.PENDING, db_index=True
    )
    decided_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name="批准/驳回人"
    )
    decided_at = models.DateTimeField("决定时间", null=True, blank=True)
    note = models.CharField("决定说明", max_length=200, blank=True)

    audit_secret_fields = ("secret",)

    class Meta:
        verbose_name = verbose_name_plural = "账号变更申请"
        ordering = ["-proposed_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(proposer=F("subject")),
                name="changerequest_not_own",
                violation_error_message="不能对自己的账号提出变更",
            ),
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True)
                | Q(status=ChangeStatus.WITHDRAWN)
                | (~Q(decided_by=F("proposer")) & ~Q(decided_by=F("subject"))),
                name="changerequest_two_people",
                violation_error_message="批准人须是提出人和对象账号以外的另一人",
            ),
            models.UniqueConstraint(
                fields=["subject", "kind"],
                condition=Q(status="pending"),
                name="changerequest_one_pending",
                violation_error_message="该账号已有同类待批准的申请",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()}：{self.subject.username}"

    def describe(self) -> str:
        if self.kind == ChangeKind.SET_ROLES:
            labels = [Role(r).label for r in Role if r in set(self.payload.get("roles", []))]
            return f"角色设为：{'、'.join(labels) or '无'}"
        if self.kind == ChangeKind.LOCK:
            until = self.payload.get("until")
            return "锁定至手动解锁" if not until or until.startswith("9999") else f"锁定至 {until[:16]}"
        return self.get_kind_display()


class LoginThrottle(models.Model):
    """Failed logins for names that are not accounts: they lock exactly like real ones, so the lock tells nothing."""

    username = models.CharField(max_length=150, unique=True)
    failed_logins = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = verbose_name_plural = "登录失败计数（不存在的账号）"

    def __str__(self) -> str:
        return self.username
