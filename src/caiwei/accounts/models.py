import hashlib
import secrets

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, Q, Value, When
from django.utils import timezone

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

    objects = CaiweiUserManager()

    audit_ignore_fields = ("last_login", "failed_logins")

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

    # The admin site asks these; capabilities answer instead of Django's per-model permissions.
    def has_perm(self, perm, obj=None):
        return False

    def has_module_perms(self, app_label):
        return False


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
