"""Models of the changes part of 数据运维: change requests 数据变更单, their execution and rollback attempts, the
journal of every step (written before the step is taken), and the before/after images in compressed chunks."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

__all__ = ["ChangeRequest", "ChangeAttempt", "ChangeJournal", "ImageChunk"]


class ChangeRequest(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "草稿"
        PENDING = "pending", "待审批"
        APPROVED = "approved", "已批准"
        RUNNING = "running", "执行中"
        DONE = "done", "已执行"
        FAILED = "failed", "执行失败"
        ROLLED_BACK = "rolled_back", "已回滚"

    class Origin(models.TextChoices):
        MANUAL = "", "手工填写"
        TICKET = "ticket", "数据变更工单"
        FINDING = "finding", "数据检查发现的问题"
        BACKUP = "backup", "备份与恢复"

    database = models.ForeignKey(
        "checks.TargetDatabase", on_delete=models.PROTECT, related_name="changes", verbose_name="目标数据库"
    )
    title = models.CharField("标题", max_length=120)
    reason = models.TextField("变更原因")
    sql = models.TextField("变更 SQL", blank=True)
    fix = models.JSONField("引导式修复", default=dict, blank=True)
    declares_ddl = models.BooleanField("含 DDL", default=False)
    emergency_plan = models.TextField("应急方案", blank=True)
    rollback_plan = models.TextField("回退方案", blank=True)
    window_start = models.DateTimeField("执行窗口开始", null=True, blank=True)
    window_end = models.DateTimeField("执行窗口结束", null=True, blank=True)
    estimated_rows = models.PositiveIntegerField("估计影响行数", default=0)
    findings = models.JSONField("审核意见", default=list, blank=True)
    plan = models.JSONField("审核后的语句", default=list, blank=True)
    status = models.CharField("状态", max_length=12, choices=Status.choices, default=Status.DRAFT)
    status_note = models.CharField("状态说明", max_length=500, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name="提出人"
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="审批人",
    )
    approved_at = models.DateTimeField("审批时间", null=True, blank=True)
    decision_note = models.CharField("审批意见", max_length=500, blank=True)
    ticket = models.ForeignKey(
        "desk.Ticket",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="data_changes",
        verbose_name="工单",
    )
    origin = models.CharField("来源", max_length=10, choices=Origin.choices, default="", blank=True)
    origin_ref = models.CharField("来源编号", max_length=60, blank=True)
    created_at = models.DateTimeField("创建时间", default=timezone.now)
    updated_at = models.DateTimeField("修改时间", default=timezone.now)
    submitted_at = models.DateTimeField("提交审批时间", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "数据变更单"
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(approver__isnull=True) | ~Q(approver=F("author")),
                name="change_approver_not_author",
                violation_error_message="审批人不能是提出人",
            )
        ]

    def __str__(self) -> str:
        return f"变更 #{self.pk} {self.title}"

    @property
    def number(self) -> str:
        return f"BG{self.pk:06d}" if self.pk else ""

    @property
    def is_editable(self) -> bool:
        return self.status in (
            self.Status.DRAFT,
            self.Status.PENDING,
            self.Status.APPROVED,
            self.Status.FAILED,
        )

    def in_window(self, now=None) -> bool:
        now = now or timezone.now()
        return bool(self.window_start and self.window_end and self.window_start <= now <= self.window_end)


class ChangeAttempt(models.Model):
    """One execution or one rollback of a change: its token (the marker's key on the target) is saved before the
    target is touched, and its outcome is only ever applied or not applied — recovery decides a running one."""

    class Kind(models.TextChoices):
        EXECUTE = "execute", "执行"
        ROLLBACK = "rollback", "回滚"

    class State(models.TextChoices):
        RUNNING = "running", "进行中"
        APPLIED = "applied", "已生效"
        NOT_APPLIED = "not_applied", "未执行"
        REVERTED = "reverted", "已回退"
        REFUSED = "refused", "有冲突未回滚"

    change = models.ForeignKey(
        ChangeRequest, on_delete=models.CASCADE, related_name="attempts", verbose_name="数据变更单"
    )
    kind = models.CharField("类型", max_length=10, choices=Kind.choices)
    token = models.CharField("标记", max_length=64, unique=True)
    state = models.CharField("结果", max_length=12, choices=State.choices, default=State.RUNNING)
    message = models.TextField("说明", blank=True)
    rows = models.PositiveIntegerField("影响行数", default=0)
    skip_conflicts = models.BooleanField("跳过冲突行", default=False)
    conflicts = models.JSONField("冲突行", default=list, blank=True)
    verification = models.JSONField("验证", default=dict, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="操作人",
    )
    started_at = models.DateTimeField("开始", default=timezone.now)
    finished_at = models.DateTimeField("结束", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "执行与回滚记录"
        ordering = ["started_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.change_id} {self.get_state_display()}"


class ChangeJournal(models.Model):
    change = models.ForeignKey(
        ChangeRequest, on_delete=models.CASCADE, related_name="journal", verbose_name="数据变更单"
    )
    attempt = models.ForeignKey(
        ChangeAttempt,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="journal",
        verbose_name="执行或回滚",
    )
    step = models.CharField("步骤", max_length=20)
    detail = models.JSONField("内容", default=dict, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="操作人",
    )
    at = models.DateTimeField("时间", default=timezone.now)

    class Meta:
        verbose_name = verbose_name_plural = "数据变更日志"
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.change_id} {self.step}"


class ImageChunk(models.Model):
    """Up to 5 000 rows of before- or after-images of one statement: column-wise JSON, zlib, SHA-256."""

    attempt = models.ForeignKey(
        ChangeAttempt, on_delete=models.CASCADE, related_name="chunks", verbose_name="执行或回滚"
    )
    statement = models.PositiveSmallIntegerField("语句序号")
    kind = models.CharField("镜像", max_length=6)  # before | after
    seq = models.PositiveIntegerField("块序号")
    rows = models.PositiveIntegerField("行数")
    data = models.BinaryField("内容")
    sha256 = models.CharField("校验和", max_length=64)

    class Meta:
        verbose_name = verbose_name_plural = "数据镜像块"
        ordering = ["attempt", "statement", "kind", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "statement", "kind", "seq"], name="image_chunk_once")
        ]

    def __str__(self) -> str:
        return f"{self.attempt_id} 第 {self.statement + 1} 条 {self.kind} #{self.seq}"
