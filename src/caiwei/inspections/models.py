"""巡检: plans (a region's system, a period of validity) with items on a business-calendar frequency, the runs the
tick creates for each due slot, each item's result (automated or ticked by an engineer), and screenshots."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from caiwei.desk.models import SYSTEMS
from caiwei.regions.scoping import RegionScopedQuerySet

from . import slots

KIND_LABELS = {
    "probe": "监控探测",
    "check": "数据检查",
    "recon": "银行对账",
    "manual": "人工检查",
}
AUTOMATED = ("probe", "check", "recon")


class Plan(models.Model):
    """巡检计划: what the contract asks of one region's system, valid from … until …."""

    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, verbose_name="财政区划")
    system = models.CharField("系统", max_length=20, choices=[(s, s) for s in SYSTEMS])
    name = models.CharField("计划名称", max_length=80)
    valid_from = models.DateField("生效日期")
    valid_until = models.DateField("失效日期", null=True, blank=True)
    calendar = models.CharField("业务日历", max_length=40, default="workday")
    grace_minutes = models.PositiveIntegerField("宽限（分钟）", default=120)
    enabled = models.BooleanField("启用", default=True)
    note = models.CharField("说明", max_length=200, blank=True)
    created_at = models.DateTimeField("创建时间", default=timezone.now)

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        ordering = ["region__path", "name"]
        verbose_name = verbose_name_plural = "巡检计划"

    def __str__(self) -> str:
        return self.name

    def active_on(self, day) -> bool:
        return (
            self.enabled and self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)
        )


class PlanItem(models.Model):
    """巡检项: one thing inspected at a frequency; automated (probe, check, reconciliation) or manual."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="items", verbose_name="巡检计划")
    name = models.CharField("巡检项名称", max_length=80)
    kind = models.CharField("方式", max_length=10, choices=list(KIND_LABELS.items()))
    frequency = models.CharField("频次", max_length=10, choices=list(slots.KINDS.items()), default="daily")
    times = models.CharField("巡检时间", max_length=60, default="09:00", help_text="如 09:00,15:00")
    weekday = models.PositiveSmallIntegerField(
        "星期", default=0, choices=[(i, w) for i, w in enumerate(slots.WEEKDAYS)]
    )
    nth = models.PositiveSmallIntegerField("第几个工作日", default=1)
    key_frequency = models.CharField(
        "关键时期频次", max_length=10, blank=True, choices=[("", "不加密")] + list(slots.KINDS.items())
    )
    key_times = models.CharField("关键时期巡检时间", max_length=60, blank=True)
    key_codes = models.CharField(
        "适用的关键时期", max_length=200, blank=True, help_text="关键时期代码，逗号分隔；空为全部"
    )
    monitor_items = models.ManyToManyField(
        "monitor.Item", blank=True, related_name="inspection_items", verbose_name="监控项"
    )
    database = models.ForeignKey(
        "checks.TargetDatabase",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="inspection_items",
        verbose_name="目标数据库",
    )
    packs = models.CharField("规则包", max_length=200, blank=True, default="all")
    instructions = models.TextField("检查要点", blank=True)
    position = models.PositiveSmallIntegerField("顺序", default=0)

    class Meta:
        ordering = ["plan", "position", "pk"]
        verbose_name = verbose_name_plural = "巡检项"

    def __str__(self) -> str:
        return self.name

    @property
    def automated(self) -> bool:
        return self.kind in AUTOMATED

    def rule(self) -> slots.Rule:
        return slots.Rule(
            kind=self.frequency,
            times=slots.parse_times(self.times),
            weekday=self.weekday,
            nth=self.nth,
            key_kind=self.key_frequency,
            key_times=slots.parse_times(self.key_times) if self.key_times.strip() else (),
            key_codes=frozenset(c.strip() for c in self.key_codes.split(",") if c.strip()),
        )

    def frequency_label(self) -> str:
        try:
            return self.rule().label()
        except ValueError:
            return "（频次设置有误）"


class Run(models.Model):
    """一次巡检: the items of one plan due at one slot. (plan, slot) is unique: a due slot makes exactly one run."""

    class Status(models.TextChoices):
        OPEN = "open", "进行中"
        DONE = "done", "完成"

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="runs", verbose_name="巡检计划")
    slot = models.DateTimeField("应巡检时间", db_index=True)
    deadline = models.DateTimeField("完成时限")
    status = models.CharField("状态", max_length=6, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField("生成时间", default=timezone.now)
    finished_at = models.DateTimeField("完成时间", null=True, blank=True)
    finished_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, verbose_name="完成人"
    )
    conclusion = models.TextField("巡检结论", blank=True)

    region_field = "plan__region"
    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-slot", "pk"]
        verbose_name = verbose_name_plural = "巡检记录"
        constraints = [models.UniqueConstraint(fields=["plan", "slot"], name="inspection_run_once_per_slot")]

    def __str__(self) -> str:
        return f"{self.plan.name} {timezone.localtime(self.slot):%Y-%m-%d %H:%M}"

    def state(self, now: datetime | None = None) -> str:
        """done | on_time flag aside: 完成 / 逾期 / 进行中."""
        now = now or timezone.now()
        if self.status == self.Status.DONE:
            return "done"
        return "late" if now > self.deadline else "open"

    @property
    def on_time(self) -> bool:
        return self.finished_at is not None and self.finished_at <= self.deadline


class RunItem(models.Model):
    class Result(models.TextChoices):
        PENDING = "", "待检查"
        OK = "ok", "正常"
        ABNORMAL = "abnormal", "异常"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="items", verbose_name="巡检记录")
    plan_item = models.ForeignKey(
        PlanItem, null=True, on_delete=models.SET_NULL, related_name="run_items", verbose_name="巡检项"
    )
    name = models.CharField("巡检项名称", max_length=80)
    kind = models.CharField("方式", max_length=10, choices=list(KIND_LABELS.items()))
    result = models.CharField("结果", max_length=10, choices=Result.choices, blank=True, default="")
    notes = models.TextField("说明", blank=True)
    evidence = models.JSONField("证据", default=dict, blank=True)
    checked_at = models.DateTimeField("检查时间", null=True, blank=True)
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, verbose_name="检查人"
    )
    ticket = models.ForeignKey(
        "desk.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name="工单"
    )
    position = models.PositiveSmallIntegerField("顺序", default=0)

    class Meta:
        ordering = ["run", "position", "pk"]
        verbose_name = verbose_name_plural = "巡检结果"

    def __str__(self) -> str:
        return self.name

    @property
    def automated(self) -> bool:
        return self.kind in AUTOMATED


def shot_path(instance, filename: str) -> str:
    from caiwei.desk.files import extension

    ext = extension(instance.name or filename)
    return f"inspections/{instance.item.run_id}/{uuid.uuid4().hex}{'.' + ext if ext.isalnum() else ''}"


class Screenshot(models.Model):
    """截图 of a manual item, within the desk's attachment limits."""

    item = models.ForeignKey(RunItem, on_delete=models.CASCADE, related_name="shots", verbose_name="巡检结果")
    file = models.FileField("文件", upload_to=shot_path, max_length=200)
    name = models.CharField("文件名", max_length=200)
    size = models.PositiveIntegerField("大小")
    content_type = models.CharField("类型", max_length=100, blank=True)
    at = models.DateTimeField("上传时间", default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]
        verbose_name = verbose_name_plural = "巡检截图"

    def __str__(self) -> str:
        return self.name

    @property
    def is_image(self) -> bool:
        return self.name.lower().rsplit(".", 1)[-1] in {"png", "jpg", "jpeg", "gif", "bmp"}
