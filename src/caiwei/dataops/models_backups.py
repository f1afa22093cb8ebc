"""Models of the backups part of 数据运维: 备份计划, 备份, 按范围恢复, 灾难恢复演练."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from caiwei.checks import limits

__all__ = ["Backup", "BackupSchedule", "DrillRecord", "RangeRestore"]


class BackupSchedule(models.Model):
    """备份计划: a cron line (optionally only on business days of a calendar), the tables, how many backups to keep."""

    database = models.ForeignKey(
        "checks.TargetDatabase",
        on_delete=models.CASCADE,
        related_name="backup_schedules",
        verbose_name="数据库",
    )
    tables = models.JSONField("备份的表", default=list, blank=True, help_text="空为全部表")
    cron = models.CharField(
        "执行时间（cron）",
        max_length=60,
        help_text="如 0 2 * * * 为每天 2 点",
        validators=[limits.validate_cron],
    )
    calendar = models.CharField(
        "业务日历", max_length=30, blank=True, help_text="填写业务日历代码（如 workday）则只在其工作日执行"
    )
    keep_count = models.PositiveIntegerField("保留份数", null=True, blank=True, default=7)
    keep_days = models.PositiveIntegerField("保留天数", null=True, blank=True)
    enabled = models.BooleanField("启用", default=True)
    next_run_at = models.DateTimeField("下次执行", null=True, blank=True)
    created_at = models.DateTimeField("创建时间", default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="创建人",
    )

    class Meta:
        verbose_name = verbose_name_plural = "备份计划"
        ordering = ["database", "pk"]

    def __str__(self) -> str:
        return f"{self.database} 备份计划 {self.cron}"


class Backup(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "备份中"
        DONE = "done", "成功"
        FAILED = "failed", "失败"
        PRUNED = "pruned", "已按保留策略删除"

    database = models.ForeignKey(
        "checks.TargetDatabase", on_delete=models.PROTECT, related_name="backups", verbose_name="数据库"
    )
    schedule = models.ForeignKey(
        BackupSchedule,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="backups",
        verbose_name="备份计划",
    )
    dialect = models.CharField("数据库类型", max_length=12)
    tables = models.JSONField("备份的表", default=list, blank=True)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.RUNNING)
    path = models.CharField("备份文件", max_length=500, blank=True)
    sha256 = models.CharField("SHA-256 校验值", max_length=64, blank=True)
    size = models.BigIntegerField("文件大小（字节）", default=0)
    seconds = models.FloatField("耗时（秒）", default=0)
    counts = models.JSONField("备份时各表行数", default=dict, blank=True)
    counts_source = models.CharField("行数来源", max_length=60, blank=True)
    tool_version = models.CharField("备份工具", max_length=120, blank=True)
    error = models.TextField("错误", blank=True)
    started_at = models.DateTimeField("开始", default=timezone.now, db_index=True)
    finished_at = models.DateTimeField("结束", null=True, blank=True)
    pruned_at = models.DateTimeField("删除时间", null=True, blank=True)
    alert_ticket = models.ForeignKey(
        "desk.Ticket",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="告警工单",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="发起人",
    )
    job = models.ForeignKey(
        "jobs.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="后台任务",
    )

    class Meta:
        verbose_name = verbose_name_plural = "备份"
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"备份 #{self.pk} {self.database}"

    @property
    def usable(self) -> bool:
        return self.status == self.Status.DONE

    @property
    def file_name(self) -> str:
        return self.path.rsplit("/", 1)[-1] if self.path else ""


class RangeRestore(models.Model):
    audit_ignore_fields = ("rows",)  # the diff grid (thousands of rows): its summary is audited

    class Status(models.TextChoices):
        RUNNING = "running", "恢复中"
        READY = "ready", "已比对"
        FAILED = "failed", "失败"
        CLOSED = "closed", "已关闭"

    backup = models.ForeignKey(Backup, on_delete=models.PROTECT, related_name="restores", verbose_name="备份")
    table = models.CharField("表", max_length=200)
    condition = models.TextField("条件", blank=True)
    condition_sql = models.TextField("条件（规范化）", blank=True)
    key = models.JSONField("主键列", default=list, blank=True)
    staging_db = models.CharField("临时库", max_length=255, blank=True)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.RUNNING)
    error = models.TextField("错误", blank=True)
    summary = models.JSONField("比对摘要", default=dict, blank=True)
    rows = models.JSONField("差异行", default=list, blank=True)
    truncated = models.BooleanField("差异行已截断", default=False)
    selected = models.JSONField("选中的主键", default=list, blank=True)
    sql = models.TextField("生成的 SQL", blank=True)
    change_id = models.PositiveBigIntegerField("数据变更单", null=True, blank=True)
    created_at = models.DateTimeField("发起时间", default=timezone.now, db_index=True)
    finished_at = models.DateTimeField("比对完成", null=True, blank=True)
    closed_at = models.DateTimeField("关闭时间", null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="发起人",
    )

    class Meta:
        verbose_name = verbose_name_plural = "按范围恢复"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"按范围恢复 #{self.pk} {self.table}"


class DrillRecord(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "演练中"
        PASSED = "passed", "通过"
        FAILED = "failed", "未通过"

    database = models.ForeignKey(
        "checks.TargetDatabase", on_delete=models.PROTECT, related_name="drills", verbose_name="数据库"
    )
    backup = models.ForeignKey(
        Backup, null=True, blank=True, on_delete=models.PROTECT, related_name="drills", verbose_name="备份"
    )
    scratch_db = models.CharField("临时库", max_length=255, blank=True)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.RUNNING)
    error = models.TextField("错误", blank=True)
    steps = models.JSONField("步骤", default=list, blank=True)
    counts = models.JSONField("各表行数核对", default=list, blank=True)
    checks = models.JSONField("数据检查结果", default=list, blank=True)
    rto_seconds = models.FloatField("恢复时间（秒）", null=True, blank=True)
    rpo_seconds = models.FloatField("数据丢失窗口（秒）", null=True, blank=True)
    rto_goal_minutes = models.PositiveIntegerField("恢复时间目标（分钟）", default=240)
    rpo_goal_hours = models.PositiveIntegerField("恢复点目标（小时）", default=24)
    packs = models.CharField("规则包", max_length=200, default="all")
    report = models.CharField("恢复报告", max_length=500, blank=True)
    started_at = models.DateTimeField("开始", default=timezone.now, db_index=True)
    finished_at = models.DateTimeField("结束", null=True, blank=True)
    performed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="演练人",
    )

    class Meta:
        verbose_name = verbose_name_plural = "灾难恢复演练"
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"灾难恢复演练 #{self.pk} {self.database}"

    @property
    def rto_ok(self) -> bool | None:
        return None if self.rto_seconds is None else self.rto_seconds <= self.rto_goal_minutes * 60

    @property
    def rpo_ok(self) -> bool | None:
        return None if self.rpo_seconds is None else self.rpo_seconds <= self.rpo_goal_hours * 3600
