"""Models of the console part of 数据运维: column classification per target database, query grants, the query log
and export requests (approved by another person before the grid may be downloaded as Excel)."""

from django.conf import settings
from django.db import models
from django.utils import timezone

__all__ = ["ColumnClass", "QueryGrant", "QueryLog", "QueryExport"]

KIND_CHOICES = [
    ("id", "身份证号"),
    ("account", "银行账号"),
    ("phone", "手机号"),
    ("name", "姓名"),
    ("secret", "密钥"),
    ("none", "不敏感"),
]


class ColumnClass(models.Model):
    """列分级: the class of one logical column on one target database (seeded from the column names; "none"
    records that a column named like a sensitive one is not)."""

    database = models.ForeignKey(
        "checks.TargetDatabase",
        on_delete=models.CASCADE,
        related_name="column_classes",
        verbose_name="数据库",
    )
    table = models.CharField("逻辑表", max_length=64)
    column = models.CharField("逻辑列", max_length=64)
    kind = models.CharField("分级", max_length=10, choices=KIND_CHOICES)
    updated_at = models.DateTimeField("修改时间", default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="修改人",
    )

    class Meta:
        verbose_name = verbose_name_plural = "列分级"
        ordering = ["database", "table", "column"]
        constraints = [
            models.UniqueConstraint(fields=["database", "table", "column"], name="column_class_once")
        ]

    def __str__(self) -> str:
        return f"{self.table}.{self.column}：{self.get_kind_display()}"


class QueryGrant(models.Model):
    """查询授权: a user may query these logical tables of one target database until ``valid_until``."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="query_grants",
        verbose_name="被授权人",
    )
    database = models.ForeignKey(
        "checks.TargetDatabase", on_delete=models.CASCADE, related_name="query_grants", verbose_name="数据库"
    )
    tables = models.JSONField("可查询的逻辑表", default=list)
    row_limit = models.PositiveIntegerField("返回行数上限", default=200)
    timeout_s = models.PositiveIntegerField("语句超时（秒）", default=30)
    valid_until = models.DateTimeField("有效期至")
    reason = models.CharField("授权事由", max_length=200, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="授权人",
    )
    created_at = models.DateTimeField("授权时间", default=timezone.now)
    revoked_at = models.DateTimeField("收回时间", null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="收回人",
    )

    class Meta:
        verbose_name = verbose_name_plural = "查询授权"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.user} · {self.database}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.valid_until > timezone.now()


class QueryLog(models.Model):
    """查询记录: every query typed into the console, refused ones included."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name="查询人"
    )
    database = models.ForeignKey(
        "checks.TargetDatabase", on_delete=models.PROTECT, related_name="query_logs", verbose_name="数据库"
    )
    sql = models.TextField("查询语句")
    ticket = models.ForeignKey(
        "desk.Ticket",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="query_logs",
        verbose_name="工单",
    )
    rows = models.PositiveIntegerField("返回行数", default=0)
    truncated = models.BooleanField("结果已截断", default=False)
    duration_ms = models.PositiveIntegerField("耗时（毫秒）", default=0)
    masked_columns = models.JSONField("脱敏列", default=list)
    refusal = models.TextField("拒绝原因", blank=True)
    error = models.TextField("执行错误", blank=True)
    created_at = models.DateTimeField("时间", default=timezone.now, db_index=True)

    class Meta:
        verbose_name = verbose_name_plural = "查询记录"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"查询 #{self.pk}"

    @property
    def status(self) -> str:
        if self.refusal:
            return "已拒绝"
        if self.error:
            return "执行出错"
        return "已执行"


class QueryExport(models.Model):
    """导出申请: a query's result as Excel, once another person (查询授权人 or 财政审批人) approves it."""

    class Status(models.TextChoices):
        PENDING = "pending", "待审批"
        APPROVED = "approved", "已批准"
        REJECTED = "rejected", "已驳回"

    log = models.ForeignKey(QueryLog, on_delete=models.PROTECT, related_name="exports", verbose_name="查询")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name="申请人"
    )
    reason = models.CharField("导出事由", max_length=200)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField("申请时间", default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="审批人",
    )
    decided_at = models.DateTimeField("审批时间", null=True, blank=True)
    note = models.CharField("审批意见", max_length=200, blank=True)
    downloads = models.PositiveIntegerField("下载次数", default=0)

    class Meta:
        verbose_name = verbose_name_plural = "导出申请"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"导出申请 #{self.pk}"
