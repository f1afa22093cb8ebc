from django.db import models

from .chain import CHAIN_BREAK, GENESIS


class AuditAction(models.TextChoices):
    LOGIN = "login", "登录"
    LOGIN_FAILED = "login_failed", "登录失败"
    LOGOUT = "logout", "退出"
    LOCKED = "locked", "账号锁定"
    CREATE = "create", "新增"
    UPDATE = "update", "修改"
    DELETE = "delete", "删除"
    EXPORT = "export", "导出"
    ADMIN = "admin", "管理操作"
    DENIED = "denied", "越权拒绝"
    CHAIN_BREAK = CHAIN_BREAK, "审计链异常"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("审计日志只能追加，不能修改")

    def delete(self):
        raise PermissionError("审计日志只能追加，不能删除")


class AuditEvent(models.Model):
    """审计日志: one link of the hash chain. Rows are only ever appended through ``caiwei.audit.log``."""

    seq = models.BigIntegerField("序号", unique=True)
    at = models.DateTimeField("时间", db_index=True)
    action = models.CharField("动作", max_length=20, choices=AuditAction.choices, db_index=True)
    actor = models.CharField("操作人", max_length=150, db_index=True)
    actor_id = models.BigIntegerField("操作人 ID", null=True, blank=True)
    ip = models.CharField("来源地址", max_length=45, null=True, blank=True)
    request_id = models.CharField("请求 ID", max_length=36, blank=True)
    source = models.CharField("途径", max_length=10, blank=True)
    object_type = models.CharField("对象类型", max_length=100, blank=True, db_index=True)
    object_id = models.CharField("对象 ID", max_length=64, blank=True)
    object_repr = models.CharField("对象", max_length=200, blank=True)
    before = models.JSONField("修改前", null=True, blank=True)
    after = models.JSONField("修改后", null=True, blank=True)
    detail = models.JSONField("说明", default=dict, blank=True)
    prev_hash = models.CharField("前序哈希", max_length=64)
    hash = models.CharField("哈希", max_length=64)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        verbose_name = verbose_name_plural = "审计日志"

    def __str__(self) -> str:
        return f"#{self.seq} {self.actor} {self.get_action_display()} {self.object_repr}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("审计日志只能追加，不能修改")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("审计日志只能追加，不能删除")

    def chain_row(self) -> dict:
        return {f.attname: getattr(self, f.attname) for f in self._meta.concrete_fields}


class HeadQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("审计链头只能随追加前进，不能直接修改")

    def delete(self):
        raise PermissionError("审计链头不能删除")


class AuditHead(models.Model):
    """链头: the last sequence number and hash, locked while a row is appended so the chain never forks.

    ``mac`` is HMAC-SM3 over (seq, hash) with the audit key, so the head cannot be rewound to an arbitrary value
    to hide rows deleted at the tail (``chain.head_mac``)."""

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS)
    mac = models.CharField(max_length=64, blank=True, default="")

    objects = HeadQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "审计链头"

    def __str__(self) -> str:
        return f"#{self.seq} {self.hash[:12]}"

    def delete(self, *args, **kwargs):
        raise PermissionError("审计链头不能删除")
