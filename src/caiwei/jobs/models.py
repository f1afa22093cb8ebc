from django.conf import settings
from django.db import models
from django.utils import timezone


class JobStatus(models.TextChoices):
    QUEUED = "queued", "排队中"
    RUNNING = "running", "运行中"
    SUCCEEDED = "succeeded", "已完成"
    FAILED = "failed", "失败"


class Job(models.Model):
    """后台任务记录: what ran, for whom, how far it got, and its log, for the pages to show."""

    kind = models.CharField("类型", max_length=60, db_index=True)
    title = models.CharField("名称", max_length=200)
    params = models.JSONField("参数", default=dict, blank=True)
    status = models.CharField(
        "状态", max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    done = models.BigIntegerField("已处理", default=0)
    total = models.BigIntegerField("总量", null=True, blank=True)
    log = models.TextField("日志", blank=True)
    result = models.JSONField("结果", null=True, blank=True)
    error = models.TextField("错误", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, verbose_name="发起人"
    )
    region = models.ForeignKey(
        "regions.Region", null=True, blank=True, on_delete=models.SET_NULL, verbose_name="财政区划"
    )
    created_at = models.DateTimeField("创建时间", default=timezone.now, db_index=True)
    started_at = models.DateTimeField("开始时间", null=True, blank=True)
    finished_at = models.DateTimeField("结束时间", null=True, blank=True)

    # Progress and log lines are not changes of record: auditing each would bury the real events.
    audit_ignore_fields = ("done", "total", "log", "status", "started_at", "finished_at", "result", "error")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = verbose_name_plural = "后台任务"

    def __str__(self) -> str:
        return f"{self.title}（{self.get_status_display()}）"

    @property
    def percent(self) -> int | None:
        if not self.total:
            return 100 if self.status == JobStatus.SUCCEEDED else None
        return min(100, int(self.done * 100 / self.total))

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)


class WorkerBeat(models.Model):
    """The periodic tick writes here, so pages can tell whether a worker is running."""

    name = models.CharField(max_length=40, unique=True)
    at = models.DateTimeField()
    detail = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"{self.name} {self.at}"
